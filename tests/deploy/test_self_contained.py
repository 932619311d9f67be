"""Nothing in the project reads files outside its own tree: a user who clones
the repository alone must pass `make test`."""

from __future__ import annotations

import re
import subprocess

from minirec.settings import REPO_ROOT

# Paths that climb out of the repository: "../" + the sibling folder, or the parent
# of the repo root (each pattern built from parts, so this file does not match itself).
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", r"REPO_ROOT\.parent", r"parents\[2\]" + r"\s*/"]))


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if f.endswith((".py", ".sh", ".yml", ".yaml", ".toml"))
            or f in ("Makefile", ".env") or f.startswith(".ci/")]


def test_no_path_leaves_the_repository():
    hits = []
    for rel in tracked_files():
        path = REPO_ROOT / rel
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{rel}:{n}: {line.strip()}")
    assert not hits, "files that read outside the repository:\n" + "\n".join(hits)


def test_the_check_finds_a_path_outside():
    assert OUTSIDE.search("SCHEMA = REPO_ROOT" + '.parent / "x"')
    assert OUTSIDE.search("cat ../" + "shared/reference/x.json")
    assert not OUTSIDE.search('REPO_ROOT / "data"')
