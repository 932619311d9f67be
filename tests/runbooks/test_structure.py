"""Every runbook topic has the six parts in order, enough interview questions,
resolvable relative links, and a stated reason above every skipped block; and the
gate of issue 14: answers of substance, asserts on computed values, no citation
outside the repository, no "(planned)" on files that exist. Each gate rule is a
plain function with a test showing it fires on a bad example."""

from __future__ import annotations

import ast
import builtins
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


NOT_TOPICS = ("README.md", "drills.md")  # a section's index and its interview drills


def topic_files() -> list[Path]:
    return sorted(p for p in RUNBOOKS.rglob("*.md") if p.name not in NOT_TOPICS)


def section_dirs() -> list[Path]:
    return sorted(p for p in RUNBOOKS.iterdir() if p.is_dir() and p.name[:2].isdigit())


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


# --- the gate that catches what a reader would (issue 14, part 7) --------------------------------
# Each rule is a plain function over markdown text, returning the offending items, so that the
# bad-example tests below can show the rule fires.

MIN_ANSWER_WORDS = 40
# built from parts, so this file does not itself name a path outside the repository
OUTSIDE = re.compile("|".join([r"FACTS\.md", r"\.\./" + "shared", "/work/" + "shared"]))
PLANNED = re.compile(r"(?:\[[^\]]*\]\(([^)\s]+)\)|`([^`\s]+\.md)`)\s*\(planned\)")
BUILTIN_NAMES = set(dir(builtins))


def rendered(text: str) -> str:
    """Text as a reader sees it: HTML comments (the source markers of stack numbers) removed."""
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def thin_answers(text: str) -> list[str]:
    """Question headings (### in Interview Q&A) whose answer has fewer than MIN_ANSWER_WORDS words."""
    qa = section_body(text, "Interview Q&A")
    parts = re.split(r"^(### .+)$", qa, flags=re.M)
    out = []
    for head, body in zip(parts[1::2], parts[2::2], strict=True):
        prose = rendered(re.sub(r"^```.*?^```", "", body, flags=re.M | re.S))
        if len(re.findall(r"\S+", prose)) < MIN_ANSWER_WORDS:
            out.append(head)
    return out


def literal_asserts(code: str) -> list[int]:
    """Line numbers of asserts that check no value computed in the code (only literals and builtins)."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assert):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            if not (names - BUILTIN_NAMES):
                out.append(node.lineno)
    return out


def python_blocks(text: str) -> list[tuple[int, str]]:
    return [(line, code) for line, info, code in parse_blocks_(text) if info.split()[:1] == ["python"]]


def parse_blocks_(text: str):
    fence = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
    for m in fence.finditer(text):
        yield text.count("\n", 0, m.start("body")) + 1, m.group("info").strip(), m.group("body")


def outside_citations(text: str) -> list[str]:
    return OUTSIDE.findall(text)


def planned_links_to_existing(text: str, base: Path) -> list[str]:
    out = []
    for link, code_path in PLANNED.findall(text):
        target = (link or code_path).split("#", 1)[0]
        if target and ((base / target).exists() or (RUNBOOKS / target).exists()):
            out.append(target)
    return out


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_questions_have_answers_of_substance(path: Path):
    thin = thin_answers(path.read_text(encoding="utf-8"))
    assert not thin, f"{path.name}: answers under {MIN_ANSWER_WORDS} words: {thin}"


@pytest.mark.parametrize("path", topic_files() + sorted(RUNBOOKS.rglob("drills.md")),
                         ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_asserts_check_computed_values(path: Path):
    bad = [line + n - 1 for line, code in python_blocks(path.read_text(encoding="utf-8"))
           for n in literal_asserts(code)]
    assert not bad, f"{path.name}: asserts on literals alone at lines {bad}"


@pytest.mark.parametrize("path", all_markdown(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_citation_outside_the_repo(path: Path):
    found = outside_citations(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(REPO_ROOT)}: cites files outside the repository: {found}"


@pytest.mark.parametrize("path", all_markdown(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_planned_link_to_an_existing_file(path: Path):
    found = planned_links_to_existing(path.read_text(encoding="utf-8"), path.parent)
    assert not found, f"{path.relative_to(REPO_ROOT)}: '(planned)' on files that exist: {found}"


# the rules fire on bad examples --------------------------------------------------------------

BAD_QA = """## Interview Q&A

### Q1. What is batching?

It amortises a fixed cost.

### Q2. A real question?

""" + " ".join(["word"] * 45) + "\n\n## Common Mistakes\n"


def test_rule_thin_answer_fires():
    assert thin_answers(BAD_QA) == ["### Q1. What is batching?"]


def test_rule_literal_assert_fires():
    assert literal_asserts("assert round(128 / 580, 2) == 0.22\nassert 1 < 2\n") == [1, 2]
    assert literal_asserts("x = 128 / 580\nassert round(x, 2) == 0.22\n") == []


def test_rule_literal_assert_fires_on_a_markdown_block():
    text = "# T\n\n```python\nx = 1\nassert x == 1\nassert 2 == 2\n```\n"
    (line, code), = python_blocks(text)
    assert [line + n - 1 for n in literal_asserts(code)] == [6]


def test_rule_outside_citation_fires():
    assert outside_citations("measured (FACTS.md) and [guide](../" + "shared/STYLE.md)") == ["FACTS.md", "../" + "shared"]
    assert outside_citations("`make bench-features` → `artifacts/bench/features.json`") == []


def test_rule_planned_link_fires():
    base = RUNBOOKS / "01_Classical_ML"
    bad = "see [serving](../04_ML_Systems/model_serving.md) (planned) and `04_ML_Systems/feature_stores.md` (planned)"
    assert planned_links_to_existing(bad, base) == ["../04_ML_Systems/model_serving.md",
                                                     "04_ML_Systems/feature_stores.md"]
    assert planned_links_to_existing("[x](../nowhere/absent.md) (planned)", base) == []


# Production Considerations: every topic file has the section, within the word range (long enough
# to say something specific about scale, latency, cost, monitoring and failure; short enough to read).
PRODUCTION_WORDS = (120, 250)


def production_problems(text: str, required: bool) -> list[str]:
    titles = h2_titles(text)
    if "Production Considerations" not in titles:
        return ["no '## Production Considerations' section"] if required else []
    n = len(re.findall(r"\S+", rendered(section_body(text, "Production Considerations"))))
    lo, hi = PRODUCTION_WORDS
    return [] if lo <= n <= hi else [f"Production Considerations has {n} words (want {lo}-{hi})"]


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_production_considerations(path: Path):
    problems = production_problems(path.read_text(encoding="utf-8"), required=True)
    assert not problems, f"{path.name}: {problems}"


def test_rule_production_considerations_fires():
    assert production_problems("## Conceptual Overview\n\ntext\n", required=True)
    assert production_problems("## Conceptual Overview\n\ntext\n", required=False) == []
    short = "## Production Considerations\n\n" + "word " * 30 + "\n## Common Mistakes\n"
    assert production_problems(short, required=False) == ["Production Considerations has 30 words (want 120-250)"]
    ok = "## Production Considerations\n\n" + "word " * 150 + "\n## Common Mistakes\n"
    assert production_problems(ok, required=True) == []
    marked = ok.replace("word ", "word <!-- src: artifacts/x.json#k tol=0.1 --> ", 120)  # comments do not render
    assert production_problems(marked, required=True) == []


# Diagrams: every topic of the systems and applied parts has a mermaid diagram (data flow, architecture or
# decision path), and every mermaid block anywhere opens with a diagram type GitHub renders. The full
# grammar is mermaid's own; this catches an empty or mistyped block.
DIAGRAM_PARTS = ("04_ML_Systems", "05_Specialized_Domains", "06_GenAI_Applied")
DIAGRAM_TYPES = ("flowchart", "graph", "sequenceDiagram", "stateDiagram-v2", "classDiagram", "gantt")


def diagram_problems(text: str, required: bool) -> list[str]:
    blocks = [body for _line, info, body in parse_blocks_(text) if info.split()[:1] == ["mermaid"]]
    problems = [] if blocks or not required else ["no mermaid diagram"]
    for body in blocks:
        lines = [x.strip() for x in body.splitlines() if x.strip() and not x.strip().startswith("%%")]
        if len(lines) < 3 or not lines[0].startswith(DIAGRAM_TYPES):
            problems.append(f"mermaid block starting {lines[:1]} is not a diagram (type, then 2+ lines)")
    return problems


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_diagrams(path: Path):
    problems = diagram_problems(path.read_text(encoding="utf-8"), path.parent.name in DIAGRAM_PARTS)
    assert not problems, f"{path.name}: {problems}"


def test_rule_diagram_fires():
    assert diagram_problems("# T\n\ntext\n", required=True) == ["no mermaid diagram"]
    assert diagram_problems("# T\n\ntext\n", required=False) == []
    bad = "```mermaid\nflowhcart LR\n  A --> B\n  B --> C\n```\n"
    assert diagram_problems(bad, required=True)
    good = "```mermaid\nflowchart LR\n  A --> B\n  B --> C\n```\n"
    assert diagram_problems(good, required=True) == []


# Interview drills: every section has drills.md with at least one drill ("## Drill: ..."), each with a
# chained scenario, what a senior answer must contain, the common wrong answer (each of substance) and
# worked numbers in a python block that asserts on what it computes (the collector runs it).
DRILL_PARTS = ("Scenario", "What a senior answer must contain", "The common wrong answer", "Worked numbers")
MIN_DRILL_WORDS = 60


def h3_body(text: str, title: str) -> str | None:
    m = re.search(rf"^### {re.escape(title)}\s*$(.*?)(?=^### |^## |\Z)", text, re.M | re.S)
    return m.group(1) if m else None


def drill_problems(text: str) -> list[str]:
    drills = re.split(r"^## Drill\b.*$", text, flags=re.M)[1:]
    if not drills:
        return ["no '## Drill: ...' section"]
    problems = []
    for n, drill in enumerate(drills, start=1):
        for part in DRILL_PARTS:
            body = h3_body(drill, part)
            if body is None:
                problems.append(f"drill {n}: no '### {part}'")
                continue
            prose = re.sub(r"^```.*?^```", "", body, flags=re.M | re.S)
            if part != "Worked numbers" and len(re.findall(r"\S+", prose)) < MIN_DRILL_WORDS:
                problems.append(f"drill {n}: '{part}' has under {MIN_DRILL_WORDS} words")
        blocks = python_blocks(h3_body(drill, "Worked numbers") or "")
        if not any("assert" in code for _line, code in blocks):
            problems.append(f"drill {n}: 'Worked numbers' has no python block that asserts")
    return problems


@pytest.mark.parametrize("section", section_dirs(), ids=lambda p: p.name)
def test_every_section_has_a_drill(section: Path):
    drills = section / "drills.md"
    assert drills.exists(), f"{section.name}: no drills.md"
    problems = drill_problems(drills.read_text(encoding="utf-8"))
    assert not problems, f"{section.name}/drills.md: {problems}"
    readme = (section / "README.md").read_text(encoding="utf-8")
    assert "(drills.md)" in readme, f"{section.name}/README.md does not link its drills.md"


def test_rule_drill_fires():
    assert drill_problems("# Drills\n\ntext\n") == ["no '## Drill: ...' section"]
    words = " ".join(["word"] * 70)
    parts = "".join(f"### {p}\n\n{words}\n\n" for p in DRILL_PARTS[:3])
    good = f"## Drill: one\n\n{parts}### Worked numbers\n\n```python\nx = 2\nassert x == 2\n```\n"
    assert drill_problems(good) == []
    no_code = f"## Drill: one\n\n{parts}### Worked numbers\n\ntext only\n"
    assert drill_problems(no_code) == ["drill 1: 'Worked numbers' has no python block that asserts"]
    thin = good.replace(words, "too short", 1)
    assert drill_problems(thin) == ["drill 1: 'Scenario' has under 60 words"]
