"""The artifacts a stack number may cite: path, the command that writes it, and the source files
whose string literals name its keys (so a marker's key can be checked against the code that
writes the file, without running anything)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from minirec.settings import REPO_ROOT


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the repository root, as quoted in markers (the ARTIFACTS_DIR default)
    command: str  # what writes it
    producers: tuple[str, ...]  # repo-relative source files that write it or build its keys


_PIPE = "make train"
ARTIFACTS: dict[str, Artifact] = {a.path: a for a in (
    Artifact("artifacts/bench/serving.json", "make bench-serving", ("loadtests/bench_serving.py",)),
    Artifact("artifacts/bench/features.json", "make bench-features", ("loadtests/bench_features.py",)),
    Artifact("artifacts/bench/stream.json", "make bench-stream", ("loadtests/bench_stream.py",)),
    Artifact("artifacts/bench/assignment.json", "make bench-assignment", ("loadtests/bench_assignment.py",)),
    Artifact("artifacts/bench/drift.json", "make bench-drift", ("loadtests/bench_drift.py",)),
    Artifact("artifacts/bench/scale.json", "make bench-scale",
             ("loadtests/bench_scale.py", "loadtests/scale_stream.py", "minirec/scale/ann.py",
              "minirec/scale/plots.py", "minirec/scale/vectors.py", "minirec/scale/online.py",
              "minirec/scale/training.py")),
    Artifact("artifacts/drift/eval.json", "make drift-eval",
             ("monitoring/drift/__main__.py", "monitoring/drift/study.py", "services/simulator/scenarios.py")),
    Artifact("artifacts/ab/validation.json", "make ab-validate", ("minirec/ab/validate.py",)),
    Artifact("artifacts/latest/training_set.json", _PIPE, ("minirec/pipeline/data.py",)),
    Artifact("artifacts/latest/train.json", _PIPE, ("minirec/pipeline/training.py", "minirec/train/trainer.py")),
    Artifact("artifacts/latest/metrics.json", _PIPE,
             ("minirec/pipeline/evaluation.py", "minirec/pipeline/context.py", "minirec/train/metrics.py",
              "minirec/train/evaluate.py")),
    Artifact("artifacts/latest/metrics_valid.json", _PIPE,
             ("minirec/pipeline/evaluation.py", "minirec/pipeline/context.py", "minirec/train/metrics.py", "minirec/train/evaluate.py")),
    Artifact("artifacts/latest/comparison.json", _PIPE,
             ("minirec/pipeline/evaluation.py", "minirec/train/metrics.py")),
    Artifact("artifacts/latest/gate.json", _PIPE, ("minirec/pipeline/gating.py", "minirec/train/gate.py")),
    Artifact("artifacts/latest/ann.json", _PIPE, ("minirec/pipeline/index.py", "minirec/train/ann.py")),
)}


@cache
def literal_patterns(producers: tuple[str, ...], root: Path = REPO_ROOT) -> tuple[re.Pattern, ...]:
    """Every string literal of the producer files as an exact pattern, and the field names of their
    dataclasses (written with `asdict`); an f-string with a literal part becomes a pattern with `.+`
    for each placeholder (f"raw_reader_{b}" -> raw_reader_.+)."""
    out: set[str] = set()
    for rel in producers:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        fstring_parts = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                parts = [re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values]
                fstring_parts.update(id(v) for v in node.values)
                if any(isinstance(v, ast.Constant) and v.value for v in node.values):
                    out.add("".join(parts))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                out.update(re.escape(x.target.id) for x in node.body
                           if isinstance(x, ast.AnnAssign) and isinstance(x.target, ast.Name))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in fstring_parts:
                out.add(re.escape(node.value))
    return tuple(re.compile(p) for p in sorted(out))


def unknown_segments(artifact: Artifact, key: str, root: Path = REPO_ROOT) -> list[str]:
    """Key segments (names, and field names of list selectors) no producer literal can spell."""
    pats = literal_patterns(artifact.producers, root)
    bad = []
    for seg in split_key(key):
        names = [seg.name] + [k for k, _v in seg.select]
        for name in names:
            if name and not name.isdigit() and not any(p.fullmatch(name) for p in pats):
                bad.append(name)
    return bad


@dataclass(frozen=True)
class Segment:
    name: str  # dict key ("" when the segment only selects)
    select: tuple[tuple[str, str], ...] = ()  # [field=value,...]: the one list element matching all


SEGMENT = re.compile(r"^(?P<name>[^\[\]]*)(?:\[(?P<sel>[^\]]*)\])?$")


def split_key(key: str) -> list[Segment]:
    """"rows[impressions=10000,engine=report].seconds" -> [Segment(rows, ...), Segment(seconds)]."""
    out = []
    for raw in key.split("."):
        m = SEGMENT.match(raw)
        if not m or not raw:
            raise ValueError(f"bad key segment {raw!r} in {key!r}")
        sel = tuple(tuple(x.split("=", 1)) for x in (m.group("sel") or "").split(",") if x)
        if any(len(x) != 2 for x in sel):
            raise ValueError(f"bad selector in {raw!r} (want [field=value,...])")
        out.append(Segment(m.group("name"), sel))
    return out


def lookup(doc, key: str):
    """The value at `key` in a parsed JSON document; KeyError naming the first missing part."""
    node = doc
    for seg in split_key(key):
        if seg.name:
            if isinstance(node, list) and seg.name.isdigit() and int(seg.name) < len(node):
                node = node[int(seg.name)]
            elif isinstance(node, dict) and seg.name in node:
                node = node[seg.name]
            else:
                raise KeyError(seg.name)
        if seg.select:
            hits = [x for x in (node if isinstance(node, list) else [])
                    if isinstance(x, dict) and all(str(x.get(k)) == v for k, v in seg.select)]
            if len(hits) != 1:
                raise KeyError(f"{seg.name}[{','.join('='.join(s) for s in seg.select)}] matches {len(hits)} rows")
            node = hits[0]
    return node
