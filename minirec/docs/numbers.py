"""Numbers about the stack in prose, each traced to an artifact key, and checked against it.

Marker syntax (an HTML comment, so GitHub renders nothing), written right after the number it
sources; it binds to the nearest number before it on the same line:

    494 req/s<!-- src: artifacts/bench/serving.json#rps_batching_on tol=0.3 -->
    3.4 ms<!-- src: artifacts/bench/features.json#timings.feast_get_online_features_32.p50_us scale=0.001 -->
    9.3 s<!-- src: artifacts/bench/drift.json#rows[impressions=1000,engine=report].seconds tol=x3 -->
    0.26 s<!-- nosrc: derived, C / X from the two numbers above -->

`#key` is a dotted path into the JSON (a digit indexes a list; `[field=value,...]` selects the one
list element whose fields match). The prose value is compared with artifact value x `scale`
(default 1): `tol=R` passes when |prose - artifact| <= R x |artifact| (default 0.05); `tol=xF`
passes within a factor F either way (for wall-clock times on a shared machine); `atol=A` also
passes when |prose - artifact| <= A (for small counts, e.g. false alarms in 40 windows). Ratio claims get
their own marker on the ratio key, so a noisy machine can move both throughputs and still agree.

`nosrc: reason` says why a number next to stack words is not measured (a setting, a derivation, a
simulation in the runbook, a paper); at the start of a line it covers the whole line.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from minirec.docs.artifacts import ARTIFACTS, lookup, split_key

MARKER = re.compile(r"<!--\s*(?P<kind>src|nosrc):\s*(?P<body>.*?)\s*-->")
SRC_BODY = re.compile(r"^(?P<path>[^#\s]+)#(?P<key>\S+)(?P<opts>(?:\s+[a-z]+=\S+)*)$")
# a number in prose: 1,995 | 15{,}308 (LaTeX) | 0.259 | +0.0250 | −0.03 | 1.77e-6; not part of a name (p50, ndcg@10, HNSW32, 100K)
NUMBER = re.compile(r"(?<![\w@.\-/^_{}])(?:(?<=[\s(\[|$~≈=<>/])[-+−])?"
                    r"\d{1,3}(?:(?:,|\{,\})\d{3})+(?:\.\d+)?(?![\w.]|\{,)"
                    r"|(?<![\w@.\-/^_{}])(?:(?<=[\s(\[|$~≈=<>])[-+−])?\d+(?:\.\d+)?(?:e[-+−]?\d+)?(?![\w.,]\d|[A-Za-z_\d])")
UNIT = re.compile(r"\s*(?:µs|ms|s|req/s|requests/s|events/s|×)(?![\w/])")
STACK_WORDS = re.compile(r"`make [a-z]|artifacts/|\bthe stack\b|\bthis stack\b|\bstack's\b|\bthis machine\b"
                         r"|\bmeasured\b", re.I)
QUALITY_WORDS = re.compile(r"NDCG|recall|Hit@|MRR", re.I)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
DEFAULT_TOL = 0.05


@dataclass(frozen=True)
class Marker:
    file: str
    line: int
    kind: str  # "src" or "nosrc"
    value: float | None  # the prose number it binds to (None: a line-level nosrc)
    text: str  # the prose number as written
    path: str = ""
    key: str = ""
    tol: float = DEFAULT_TOL
    factor: float | None = None  # tol=xF
    scale: float = 1.0
    atol: float = 0.0
    reason: str = ""


class MarkerError(ValueError):
    pass


def prose_value(text: str) -> float:
    return float(text.replace("{,}", "").replace(",", "").replace("−", "-"))  # "1.77e-6" too


def blank(text: str, pattern: re.Pattern) -> str:
    """Replace matches by spaces (newlines kept), so positions and line numbers survive."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    return list(enumerate(blank(text, FENCE).splitlines(), start=1))


def parse_src(body: str, where: str) -> dict:
    m = SRC_BODY.match(body)
    if not m:
        raise MarkerError(f"{where}: bad marker 'src: {body}' (want 'src: <path>#<key> [tol=R|xF] [atol=A] [scale=S]')")
    out: dict = {"path": m.group("path"), "key": m.group("key")}
    try:
        split_key(out["key"])
        for opt in m.group("opts").split():
            name, val = opt.split("=", 1)
            if name == "tol" and val.startswith("x"):
                out["factor"] = float(val[1:])
            elif name == "tol":
                out["tol"] = float(val)
            elif name == "scale":
                out["scale"] = float(val)
            elif name == "atol":
                out["atol"] = float(val)
            else:
                raise MarkerError(f"{where}: unknown option {name!r} (tol, atol, scale)")
    except ValueError as exc:
        raise MarkerError(f"{where}: {exc}") from exc
    return out


def markers(text: str, file: str = "<text>") -> list[Marker]:
    """Every src/nosrc marker of a markdown text, bound to the number before it on its line."""
    out = []
    for n, line in prose_lines(text):
        numbers_line = blank(blank(line, MARKER), CODE_SPAN)
        spans = [c.span() for c in CODE_SPAN.finditer(line)]
        for m in MARKER.finditer(line):
            if any(a <= m.start() < b for a, b in spans):
                continue  # a marker quoted in a code span is an example, shown as text
            where = f"{file}:{n}"
            before = [x for x in NUMBER.finditer(numbers_line[:m.start()])]
            num = before[-1].group(0) if before else None
            if m.group("kind") == "nosrc":
                if not m.group("body"):
                    raise MarkerError(f"{where}: 'nosrc:' needs a reason")
                out.append(Marker(file, n, "nosrc", prose_value(num) if num else None, num or "", reason=m.group("body")))
                continue
            if num is None:
                raise MarkerError(f"{where}: src marker with no number before it on the line")
            out.append(Marker(file, n, "src", prose_value(num), num, **parse_src(m.group("body"), where)))
    return out


def stack_lines(text: str) -> set[int]:
    """Line numbers of paragraphs (blank-line separated, outside code) that name the stack."""
    out, para = set(), []
    for n, line in [*prose_lines(text), (0, "")]:
        if line.strip():
            para.append((n, line))
            continue
        if para and STACK_WORDS.search(blank(" ".join(x for _n, x in para), MARKER)):
            out.update(n for n, _x in para)
        para = []
    return out


def unsourced_numbers(text: str, file: str = "<text>") -> list[str]:
    """Stack numbers without a marker: in a paragraph that names the stack (`make x`, artifacts/,
    "the stack", "measured", "this machine"), every number with a unit (µs, ms, s, req/s,
    events/s, ×), every number joined to one by "/", "vs", "and", "to" (494 / 203 req/s), and every
    NDCG/recall-like decimal (0.xxx) on a line naming such a metric must be followed by a src or
    nosrc marker before the next number. Numbers in code spans, identifiers (p99, ndcg@10) and code
    blocks are not prose numbers."""
    out = []
    flagged = stack_lines(text)
    for n, line in prose_lines(text):
        if n not in flagged:
            continue
        first = MARKER.search(line)
        if first and first.group("kind") == "nosrc" and not line[:first.start()].strip():
            continue  # a line-level nosrc
        scan = blank(blank(line, MARKER), CODE_SPAN)
        nums = list(NUMBER.finditer(scan))
        covered = set()
        for m in MARKER.finditer(line):
            before = [i for i, x in enumerate(nums) if x.end() <= m.start()]
            if before:
                covered.add(before[-1])
        quality = QUALITY_WORDS.search(scan)
        need = [False] * len(nums)
        for i in reversed(range(len(nums))):
            x = nums[i]
            joined = i + 1 < len(nums) and need[i + 1] \
                and re.fullmatch(r"\s*(?:/|vs|and|to|–)\s*", scan[x.end():nums[i + 1].start()]) is not None
            need[i] = bool(UNIT.match(scan, x.end())) or joined \
                or bool(quality and re.fullmatch(r"[-+−]?0\.\d{3,}", x.group(0)))
        out += [f"{file}:{n}: {x.group(0)}" for i, x in enumerate(nums) if need[i] and i not in covered]
    return out


@dataclass(frozen=True)
class Result:
    marker: Marker
    status: str  # ok | disagree | missing-artifact | missing-key | not-a-number
    artifact_value: float | None = None
    detail: str = ""


def compare(m: Marker, actual: float) -> tuple[bool, str]:
    want = actual * m.scale
    if m.atol and abs(m.value - want) <= m.atol:
        return True, f"within {m.atol:g} of it"
    if m.factor is not None:
        lo, hi = sorted((want / m.factor, want * m.factor))
        return lo <= m.value <= hi, f"allowed {lo:.4g}..{hi:.4g} (x{m.factor:g})"
    rel = abs(m.value - want) / abs(want) if want else (0.0 if m.value == 0 else math.inf)
    return rel <= m.tol, f"off by {rel:.1%}, tolerance {m.tol:.0%}"


def check_marker(m: Marker, artifacts_root: Path, cache: dict) -> Result:
    rel = m.path.removeprefix("artifacts/")
    if m.path not in cache:
        f = artifacts_root / rel
        cache[m.path] = json.loads(f.read_text(encoding="utf-8")) if f.exists() else None
    doc = cache[m.path]
    if doc is None:
        return Result(m, "missing-artifact")
    try:
        v = lookup(doc, m.key)
    except KeyError as exc:
        return Result(m, "missing-key", detail=f"no {exc} in {m.path}")
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return Result(m, "not-a-number", detail=f"{m.key} = {v!r}")
    ok, detail = compare(m, float(v))
    return Result(m, "ok" if ok else "disagree", float(v) * m.scale, detail)


def check(files: list[Path], artifacts_root: Path, repo_root: Path) -> list[Result]:
    cache: dict = {}
    out = []
    for f in files:
        name = str(f.relative_to(repo_root)) if f.is_relative_to(repo_root) else str(f)
        for m in markers(f.read_text(encoding="utf-8"), name):
            if m.kind == "src":
                if m.path not in ARTIFACTS:
                    raise MarkerError(f"{m.file}:{m.line}: unknown artifact {m.path} (known: {', '.join(ARTIFACTS)})")
                out.append(check_marker(m, artifacts_root, cache))
    return out


def report(results: list[Result], strict: bool = False) -> tuple[str, int]:
    """(text, exit code): 1 when any number disagrees or names a key the artifact lacks; missing
    artifacts are listed with the command that writes them (and fail only with strict)."""
    lines, bad = [], 0
    for r in results:
        m = r.marker
        where = f"{m.file}:{m.line}"
        if r.status == "ok":
            lines.append(f"ok        {where}: {m.text} ~ {r.artifact_value:.4g} ({m.path}#{m.key}; {r.detail})")
        elif r.status == "disagree":
            bad += 1
            lines.append(f"DISAGREE  {where}: prose {m.text}, artifact {r.artifact_value:.4g} "
                         f"({m.path}#{m.key}; {r.detail})")
        elif r.status != "missing-artifact":
            bad += 1
            lines.append(f"BAD KEY   {where}: {r.detail} (re-run `{ARTIFACTS[m.path].command}`?)")
    missing = sorted({r.marker.path for r in results if r.status == "missing-artifact"})
    for p in missing:
        n = sum(r.marker.path == p for r in results)
        lines.append(f"missing   {p}: {n} number(s) unchecked; `{ARTIFACTS[p].command}` writes it")
    ok = sum(r.status == "ok" for r in results)
    lines.append(f"{len(results)} sourced numbers: {ok} agree, {bad} disagree or bad key, "
                 f"{len(results) - ok - bad} unchecked ({len(missing)} artifact(s) missing)")
    return "\n".join(lines), int(bad > 0 or (strict and bool(missing)))
