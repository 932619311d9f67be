"""Stack numbers in the runbooks are sourced (issue 14, part 1): the gate that every number about the
stack in the 04 runbooks carries a src/nosrc marker, that every src marker names a known artifact
and a key the producing code can write, and the checker's verdicts on tiny artifact files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minirec.docs.__main__ import main as docs_main
from minirec.docs.artifacts import ARTIFACTS, Artifact, lookup, unknown_segments
from minirec.docs.numbers import MarkerError, check, markers, report, unsourced_numbers
from minirec.settings import REPO_ROOT

SYSTEMS = REPO_ROOT / "runbooks" / "04_ML_Systems"
SOURCED = sorted((REPO_ROOT / "runbooks").rglob("*.md")) + [REPO_ROOT / "README.md"]
MAKE_TARGETS = set(re.findall(r"^([a-zA-Z][\w-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))


def rel(p: Path) -> str:
    return str(p.relative_to(REPO_ROOT))


@pytest.mark.parametrize("path", sorted(SYSTEMS.glob("*.md")), ids=rel)
def test_every_stack_number_has_a_source(path: Path):
    missing = unsourced_numbers(path.read_text(encoding="utf-8"), path.name)
    assert not missing, f"stack numbers without a src/nosrc marker: {missing}"


@pytest.mark.parametrize("path", SOURCED, ids=rel)
def test_every_marker_names_a_known_artifact_key(path: Path):
    bad = []
    for m in markers(path.read_text(encoding="utf-8"), rel(path)):
        if m.kind != "src":
            continue
        if m.path not in ARTIFACTS:
            bad.append(f"{m.file}:{m.line}: unknown artifact {m.path}")
        elif unknown := unknown_segments(ARTIFACTS[m.path], m.key):
            bad.append(f"{m.file}:{m.line}: {m.key}: no producer of {m.path} writes {unknown}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("art", ARTIFACTS.values(), ids=lambda a: a.path)
def test_artifact_table_matches_the_code_that_writes_it(art: Artifact):
    """The file name appears in a producer, and the command is a Makefile target whose recipe runs one."""
    sources = {p: (REPO_ROOT / p).read_text(encoding="utf-8") for p in art.producers}
    name = Path(art.path).name
    assert any(f'"{name}"' in s or f"'{name}'" in s for s in sources.values()), f"no producer names {name}"
    target = art.command.removeprefix("make ")
    assert target in MAKE_TARGETS
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    modules = {p.removesuffix(".py").removesuffix("/__main__").replace("/", ".") for p in art.producers}
    runs = recipe.group(1) if recipe else ""
    assert any(p in runs for p in art.producers) or any(f"-m {m.rsplit('.', 1)[0]}" in runs or f"-m {m}" in runs
                                                        for m in modules), f"`{art.command}` runs none of {art.producers}"


# --- the gate fires ----------------------------------------------------------------------------

def test_gate_fires_on_a_planted_unsourced_number():
    text = SYSTEMS.joinpath("model_serving.md").read_text(encoding="utf-8")
    planted = text + "\nIn the stack `make bench-serving` measured 512 req/s and a p99 of 41 ms.\n"
    found = unsourced_numbers(planted, "model_serving.md")
    assert [f.rsplit(": ", 1)[1] for f in found] == ["512", "41"]


def test_gate_rules():
    assert unsourced_numbers("A paper reports 512 req/s.\n") == []  # no stack words: not a stack number
    assert unsourced_numbers("Measured: 494 / 203 req/s (2.44×).\n") == ["<text>:1: 494", "<text>:1: 203",
                                                                         "<text>:1: 2.44"]
    ok = ("Measured: 494<!-- src: artifacts/bench/serving.json#rps_batching_on -->"
          " / 203<!-- nosrc: a setting --> req/s.\n")
    assert unsourced_numbers(ok) == []
    assert unsourced_numbers("<!-- nosrc: a worked example --> the stack at 30 s.\n") == []
    # a paragraph names the stack on one line, the number is on the next
    assert unsourced_numbers("In the stack, wrapped\nacross lines at 46 µs.\n") == ["<text>:2: 46"]
    # NDCG-like decimals; identifiers are not numbers
    assert unsourced_numbers("the stack's NDCG@10 is 0.3683 at p99\n") == ["<text>:1: 0.3683"]
    assert unsourced_numbers("```\nthe stack 494 req/s\n```\n") == []
    assert unsourced_numbers("the stack's 100K users, 64→128 ms\n") == ["<text>:1: 128"]  # 100K, 64→ are not timings


def test_marker_binds_to_the_number_before_it():
    (m,) = markers("494 vs 203<!-- src: artifacts/bench/serving.json#rps_batching_off tol=x2 scale=1 --> req/s")
    assert (m.value, m.key, m.factor, m.scale) == (203, "rps_batching_off", 2.0, 1.0)
    (m,) = markers("1,995<!-- src: artifacts/bench/serving.json#cpu_us_per_request_on tol=0.3 --> µs")
    assert (m.value, m.tol) == (1995, 0.3)
    with pytest.raises(MarkerError):
        markers("no number <!-- src: artifacts/bench/serving.json#x -->")
    assert markers("quoted: `<!-- src: artifacts/bench/serving.json#x -->`") == []  # an example in a code span
    with pytest.raises(MarkerError):
        markers("5 <!-- src: artifacts/bench/serving.json#x frob=1 -->")


def test_unknown_key_is_reported():
    art = ARTIFACTS["artifacts/bench/serving.json"]
    assert unknown_segments(art, "ratio_on_off") == []
    assert unknown_segments(art, "targets.batching_on.rates.100.p99_ms") == []
    assert unknown_segments(art, "ratio_of_nothing") == ["ratio_of_nothing"]
    feats = ARTIFACTS["artifacts/bench/features.json"]
    assert unknown_segments(feats, "timings.feast_get_online_features_32.p50_us") == []  # from an f-string
    drift = ARTIFACTS["artifacts/bench/drift.json"]
    assert unknown_segments(drift, "rows[impressions=1000,engine=report].seconds") == []


def test_lookup_paths_and_selectors():
    doc = {"a": {"b": [1, 2]}, "rows": [{"n": 1, "e": "x", "s": 3.0}, {"n": 2, "e": "x", "s": 4.0}]}
    assert lookup(doc, "a.b.1") == 2
    assert lookup(doc, "rows[n=2,e=x].s") == 4.0
    with pytest.raises(KeyError):
        lookup(doc, "rows[e=x].s")  # two rows match
    with pytest.raises(KeyError):
        lookup(doc, "a.c")


# --- the checker on tiny artifacts -------------------------------------------------------------

def write(root: Path, rel_path: str, doc: dict) -> None:
    f = root / rel_path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(doc))


def run(tmp_path: Path, prose: str, *, strict: bool = False) -> tuple[str, int]:
    md = tmp_path / "repo" / "doc.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(prose)
    return report(check([md], tmp_path / "artifacts", tmp_path / "repo"), strict)


SERVING = "artifacts/bench/serving.json"


def test_checker_agrees_within_tolerance(tmp_path):
    write(tmp_path, SERVING, {"ratio_on_off": 2.31, "cpu_us_per_request_on": 2080.0})
    text, code = run(tmp_path, f"2.44<!-- src: {SERVING}#ratio_on_off tol=0.1 -->× and "
                               f"2.0<!-- src: {SERVING}#cpu_us_per_request_on scale=0.001 -->ms\n")
    assert code == 0, text
    assert "2 agree, 0 disagree" in text


def test_checker_fails_beyond_tolerance(tmp_path):
    write(tmp_path, SERVING, {"ratio_on_off": 1.36, "rps_batching_on": 900.0})
    text, code = run(tmp_path, f"2.44<!-- src: {SERVING}#ratio_on_off tol=0.15 -->×, "
                               f"494<!-- src: {SERVING}#rps_batching_on tol=x1.5 --> req/s\n")
    assert code == 1
    assert text.count("DISAGREE") == 2 and "doc.md:1: prose 2.44, artifact 1.36" in text


def test_checker_absolute_tolerance_for_small_counts(tmp_path):
    write(tmp_path, "artifacts/drift/eval.json", {"false_alarms": 0})
    assert run(tmp_path, "1<!-- src: artifacts/drift/eval.json#false_alarms atol=2 -->/40\n")[1] == 0
    assert run(tmp_path, "3<!-- src: artifacts/drift/eval.json#false_alarms atol=2 -->/40\n")[1] == 1
    assert run(tmp_path, "1<!-- src: artifacts/drift/eval.json#false_alarms tol=x2 -->/40\n")[1] == 1


def test_checker_names_the_missing_artifact_and_its_command(tmp_path):
    text, code = run(tmp_path, f"494<!-- src: {SERVING}#rps_batching_on -->\n")
    assert code == 0
    assert f"missing   {SERVING}: 1 number(s) unchecked; `make bench-serving` writes it" in text
    assert run(tmp_path, f"494<!-- src: {SERVING}#rps_batching_on -->\n", strict=True)[1] == 1


def test_checker_fails_on_a_key_the_artifact_lacks(tmp_path):
    write(tmp_path, SERVING, {"rps_batching_on": 494.0})
    text, code = run(tmp_path, f"2.4<!-- src: {SERVING}#ratio_on_off -->\n")
    assert code == 1 and "BAD KEY" in text and "make bench-serving" in text


def test_cli_on_a_file(tmp_path, capsys):
    write(tmp_path, SERVING, {"rps_batching_on": 200.0})
    md = tmp_path / "doc.md"
    md.write_text(f"494<!-- src: {SERVING}#rps_batching_on tol=0.3 -->\n")
    assert docs_main(["numbers", str(md), "--artifacts", str(tmp_path / "artifacts")]) == 1
    assert "DISAGREE" in capsys.readouterr().out


# --- "Try it on the stack" drills (issue 14, part 1) ---------------------------------------------
TRY = "Try it on the stack"
MAKE_IN_TEXT = re.compile(r"\bmake ([a-z][\w-]*)")
MODULE_IN_TEXT = re.compile(r"python -m ((?:minirec|services|monitoring)(?:\.\w+)*)")
TOPICS = sorted(p for p in SYSTEMS.glob("*.md") if p.name not in ("README.md", "drills.md"))


def try_problems(text: str) -> list[str]:
    """The drill section exists, names commands, what to look at and a failure to inject, and every
    `make X` / `python -m X` it quotes exists in this repository."""
    m = re.search(rf"^## {TRY}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        return [f"no '## {TRY}' section"]
    body = m.group(1)
    problems = [f"no '{part}'" for part in ("```bash", "What to look at", "failure") if part not in body]
    problems += [f"make {t}: not a Makefile target" for t in MAKE_IN_TEXT.findall(body) if t not in MAKE_TARGETS]
    for mod in MODULE_IN_TEXT.findall(body):
        path = REPO_ROOT / mod.replace(".", "/")
        if not (path.with_suffix(".py").exists() or (path / "__main__.py").exists()):
            problems.append(f"python -m {mod}: no such module")
    return problems


@pytest.mark.parametrize("path", TOPICS, ids=rel)
def test_every_systems_topic_has_a_stack_drill(path: Path):
    problems = try_problems(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.name}: {problems}"


def test_rule_stack_drill_fires():
    assert try_problems("## Overview\n\ntext\n") == [f"no '## {TRY}' section"]
    good = f"## {TRY}\n\n```bash\nmake train\n```\n\nWhat to look at: x. The failure to inject: y.\n"
    assert try_problems(good) == []
    assert try_problems(good.replace("make train", "make trian")) == ["make trian: not a Makefile target"]
    assert try_problems(good + "Run python -m minirec.nowhere too.\n") == ["python -m minirec.nowhere: no such module"]
