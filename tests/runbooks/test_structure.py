"""Every runbook topic has the six parts in order, enough interview questions,
resolvable relative links, and a stated reason above every skipped block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from minirec.settings import REPO_ROOT

RUNBOOKS = REPO_ROOT / "runbooks"
SECTIONS = [
    "Conceptual Overview",
    "Mathematical Framework",
    "Implementation",
    "Connections",
    "Interview Q&A",
    "Common Mistakes",
]
MIN_QUESTIONS = 8
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE_OPEN = re.compile(r"^```python\b(.*)$")


def topic_files() -> list[Path]:
    return sorted(p for p in RUNBOOKS.rglob("*.md") if p.name != "README.md")


def all_markdown() -> list[Path]:
    return sorted([*RUNBOOKS.rglob("*.md"), REPO_ROOT / "README.md"])


def h2_titles(text: str) -> list[str]:
    # strip code blocks so '## ' inside code does not count
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return [re.sub(r"^\d+\.\s*", "", m).strip() for m in re.findall(r"^## (.+)$", text, re.M)]


def section_body(text: str, title: str) -> str:
    m = re.search(rf"^## (?:\d+\.\s*)?{re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def test_there_are_topics():
    assert len(topic_files()) > 0


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_six_parts_in_order(path: Path):
    titles = h2_titles(path.read_text(encoding="utf-8"))
    found = [t for t in titles if t in SECTIONS]
    assert found == SECTIONS, f"{path.name}: sections {found}, expected {SECTIONS} in that order"


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_enough_interview_questions(path: Path):
    qa = section_body(path.read_text(encoding="utf-8"), "Interview Q&A")
    questions = re.findall(r"^### ", qa, re.M)
    assert len(questions) >= MIN_QUESTIONS, f"{path.name}: {len(questions)} questions (need {MIN_QUESTIONS})"


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_has_checked_code(path: Path):
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\b.*?^```", text, re.M | re.S)
    assert blocks, f"{path.name} has no python block"
    assert any("assert" in b for b in blocks), f"{path.name}: no block asserts anything"


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_skipped_blocks_say_why(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = FENCE_OPEN.match(line)
        if m and "skip" in m.group(1).split():
            above = next((x for x in reversed(lines[:i]) if x.strip()), "")
            assert "skip" in above.lower(), f"{path.name}:{i + 1}: skipped block without a reason above it"


@pytest.mark.parametrize("path", all_markdown(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(path: Path):
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        if file_part and not (path.parent / file_part).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO_ROOT)}: broken links {broken}"
