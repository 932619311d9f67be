"""`python -m minirec.docs numbers` (`make runbook-numbers`): every stack number quoted in the
runbooks and README.md against the latest artifact that names it (see minirec/docs/numbers.py for
the marker syntax). Exit 1 when a number disagrees beyond its tolerance; missing artifacts are
listed with the make target that writes them (exit 1 for them only with --strict)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from minirec.docs.numbers import MarkerError, check, report
    from minirec.settings import REPO_ROOT, get_settings

    p = argparse.ArgumentParser(prog="python -m minirec.docs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    n = sub.add_parser("numbers", help="check sourced numbers against the artifacts")
    n.add_argument("files", nargs="*", type=Path, help="markdown files (default: runbooks/**/*.md and README.md)")
    n.add_argument("--artifacts", type=Path, default=get_settings().artifacts_path,
                   help="artifacts folder (default %(default)s)")
    n.add_argument("--strict", action="store_true", help="missing artifacts fail too")
    n.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    a = p.parse_args(argv)
    files = [f.resolve() for f in a.files] or sorted((REPO_ROOT / "runbooks").rglob("*.md")) + [REPO_ROOT / "README.md"]
    try:
        results = check(files, a.artifacts, REPO_ROOT)
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text, code = report(results, a.strict)
    for line in text.splitlines():
        if not (a.quiet and line.startswith("ok ")):
            print(line)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
