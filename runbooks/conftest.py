"""Collect every ```python block of every runbook as a test.

Blocks of one file run in file order in one shared namespace, so a runbook
reads like a notebook. Each block is its own test item named
`file.md::block@L<line>`; a failure's traceback points at `file.md:<line>`.

A block whose info string carries `skip` (```` ```python skip ```` ) is not
run; the text right above it must say why (tests/runbooks checks that).
Running block N first runs any earlier block of the same file that has not
run yet, so `pytest runbooks/x.md -k L120` works on its own.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
import types
from contextlib import contextmanager
from pathlib import Path

import pytest

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def parse_blocks(text: str) -> list[tuple[int, str, str]]:
    """(first code line number, info string, code) for each fenced block."""
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("body")) + 1
        out.append((line, m.group("info").strip(), m.group("body")))
    return out


def is_python(info: str) -> bool:
    return info.split()[:1] == ["python"]


def is_skipped(info: str) -> bool:
    return "skip" in info.split()[1:]


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix == ".md" and file_path.name != "README.md":
        return RunbookFile.from_parent(parent, path=file_path)
    return None


class RunbookFile(pytest.File):
    def collect(self):
        text = self.path.read_text(encoding="utf-8")
        # a real module object, registered in sys.modules, so that code which looks
        # itself up (dataclasses, pickle, typing) works inside runbook blocks
        module = types.ModuleType(f"runbook_{self.path.parent.name}_{self.path.stem}")
        module.__file__ = str(self.path)
        sys.modules[module.__name__] = module
        self.namespace: dict = module.__dict__
        self.ran: set[int] = set()
        self.failed_at: int | None = None
        self.blocks = [(ln, info, code) for ln, info, code in parse_blocks(text) if is_python(info)]
        for idx, (line, info, _code) in enumerate(self.blocks):
            item = RunbookBlock.from_parent(self, name=f"block@L{line}", index=idx)
            if is_skipped(info):
                item.add_marker(pytest.mark.skip(reason="block marked skip in the runbook text"))
            yield item

    def run_block(self, idx: int) -> None:
        line, info, code = self.blocks[idx]
        if idx in self.ran or is_skipped(info):
            return
        for earlier in range(idx):
            self.run_block(earlier)
        if self.failed_at is not None:
            raise RunbookError(f"an earlier block ({self.path.name}:{self.failed_at}) failed")
        # Pad with newlines so tracebacks report the line inside the .md file.
        compiled = compile("\n" * (line - 1) + code, str(self.path), "exec")
        cwd = os.getcwd()
        try:
            os.chdir(self.path.parent)
            with single_threaded():
                exec(compiled, self.namespace)  # noqa: S102 - executing our own runbook code is the point
        except BaseException:
            self.failed_at = line
            raise
        finally:
            os.chdir(cwd)
            self.ran.add(idx)


@contextmanager
def single_threaded():
    """Run a block with one BLAS/OpenMP thread (and one torch thread).

    Runbook arrays are tiny: on a busy 2-core machine thread start-up and
    contention made blocks 10-30x slower than single-threaded. Limits are
    restored afterwards, so the rest of the test session is unaffected.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=1):
        try:
            if torch:
                torch.set_num_threads(1)
            yield
        finally:
            torch = sys.modules.get("torch")
            if torch:
                torch.set_num_threads(before or max(1, os.cpu_count() or 1))


class RunbookError(Exception):
    pass


class RunbookBlock(pytest.Item):
    def __init__(self, *, index: int, **kw):
        super().__init__(**kw)
        self.index = index

    def runtest(self):
        self.parent.run_block(self.index)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, RunbookError):
            return str(excinfo.value)
        tb = [f for f in traceback.extract_tb(excinfo.tb) if f.filename == str(self.path)]
        where = f"{self.path}:{tb[-1].lineno}" if tb else f"{self.path}"
        lines = traceback.format_exception(excinfo.type, excinfo.value, excinfo.tb)
        # keep only frames from the runbook and below
        return f"runbook block failed at {where}\n" + "".join(lines[-12:])

    def reportinfo(self):
        return self.path, self.parent.blocks[self.index][0] - 1, f"{self.path.name}:{self.name}"
