"""Evidently workspace (what `evidently ui` serves) and the HTML reports.

    run/drift/workspace/     one project "minirec drift"; one run per compared frame and window
    run/drift/reports/       latest.html (the last window's served-traffic report, replaced each
                             window) and <window start>.html for drifted windows (the newest KEEP kept)

`evidently ui --workspace run/drift/workspace` (`make drift-ui`) must run with
DO_NOT_TRACK=1: without it the UI starts a child process that posts telemetry.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
PROJECT = "minirec drift"


@lru_cache(maxsize=4)
def project(path: Path):
    """(workspace, project) for a workspace folder, created on first use."""
    from evidently.ui.workspace import Workspace

    ws = Workspace.create(str(path))
    found = ws.search_project(PROJECT)
    proj = found[0] if found else ws.create_project(PROJECT, description="served traffic vs the training reference")
    return ws, proj


def html_report(snapshot, folder: Path, stamp: str, drifted: bool, keep: int = 20) -> Path:
    """Write latest.html (atomically); keep a copy per drifted window, pruning the oldest beyond `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".latest.html.tmp"
    snapshot.save_html(str(tmp))
    tmp.replace(folder / "latest.html")
    if drifted:
        shutil.copy2(folder / "latest.html", folder / f"{stamp}.html")
        kept = sorted(p for p in folder.glob("*.html") if p.name != "latest.html")
        for old in kept[:-keep]:
            old.unlink()
    return folder / "latest.html"
