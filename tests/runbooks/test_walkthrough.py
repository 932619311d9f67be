"""The system design walkthrough stays true to the repository: its diagram's boxes are exactly the
services of docker-compose.yml, and every command it quotes exists (a make target, a python module,
a script). Each rule is a plain function with a test showing it fires on a bad example."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

from minirec.settings import REPO_ROOT

WALKTHROUGH = REPO_ROOT / "runbooks" / "04_ML_Systems" / "system_design_walkthrough.md"
KEYWORDS = {"flowchart", "graph", "LR", "TB", "TD", "RL", "BT", "subgraph", "end", "classDef", "class", "style"}


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```", text, re.M | re.S)


def diagram_nodes(block: str) -> set[str]:
    """Node ids of a flowchart (labels in [], (), {}, || removed; `a & b` lists split), with
    underscores read as the hyphens compose names use (mermaid ids cannot hold a hyphen safely)."""
    nodes = set()
    for line in block.splitlines():
        line = line.split("%%", 1)[0]
        bare = re.sub(r"\[\[.*?\]\]|\[\(.*?\)\]|\[.*?\]|\(\(.*?\)\)|\(.*?\)|\{.*?\}|\|.*?\|", " ", line)
        bare = re.sub(r"[-.=]+>|--+|&", " ", bare)
        nodes |= {w.replace("_", "-") for w in re.findall(r"\b[A-Za-z][\w]*\b", bare) if w not in KEYWORDS}
    return nodes


def compose_services() -> set[str]:
    return set(yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"])


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9_-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))


def quoted_commands(text: str) -> list[str]:
    """Commands in `inline code` and in fenced shell blocks: make ..., python -m ..., scripts."""
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    for info, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        if info in ("", "bash", "sh"):
            spans.extend(body.splitlines())
    return [s.strip() for s in spans if re.search(r"\bmake [a-z]|\bpython -m |loadtests/\S+\.py", s)]


def missing_commands(commands: list[str]) -> list[str]:
    """Quoted commands whose make target, python module or script does not exist."""
    targets, out = make_targets(), []
    for cmd in commands:
        for target in re.findall(r"\bmake ([a-z][a-z0-9_-]*)", cmd):
            if target not in targets:
                out.append(f"make {target}")
        for module in re.findall(r"\bpython -m ([\w.]+)", cmd):
            if importlib.util.find_spec(module) is None:
                out.append(f"python -m {module}")
        for script in re.findall(r"(loadtests/\S+\.py)", cmd):
            if not (REPO_ROOT / script).exists():
                out.append(script)
    return out


def test_the_diagram_boxes_are_the_compose_services():
    blocks = mermaid_blocks(WALKTHROUGH.read_text(encoding="utf-8"))
    assert blocks, "the walkthrough has no mermaid diagram"
    nodes = diagram_nodes(blocks[0])
    services = compose_services()
    assert nodes == services, f"only in the diagram: {sorted(nodes - services)}; only in compose: {sorted(services - nodes)}"


def test_every_quoted_command_exists():
    commands = quoted_commands(WALKTHROUGH.read_text(encoding="utf-8"))
    assert len(commands) >= 8, commands  # the numbers are quoted with their commands
    assert missing_commands(commands) == []


def test_the_readme_links_the_walkthrough():
    rel = WALKTHROUGH.relative_to(REPO_ROOT).as_posix()
    assert f"]({rel})" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_rule_diagram_nodes_fire():
    block = 'flowchart LR\n  a["x<br/>y"] -->|HTTP| kafka_init[["k"]]\n  b --> c & d\n  %% e --> f\n'
    assert diagram_nodes(block) == {"a", "kafka-init", "b", "c", "d"}


def test_rule_missing_commands_fire(tmp_path: Path):
    assert missing_commands(["make no-such-target", "python -m minirec.nowhere", "loadtests/none.py",
                             "make demo", "python -m minirec.cli"]) == [
        "make no-such-target", "python -m minirec.nowhere", "loadtests/none.py"]
