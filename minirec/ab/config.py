"""The experiments file (services/assignment/experiments.yaml): schema, loading, validation.

    YAML text --yaml.compose (nodes keep line marks)--> plain dict + {path: line}
              --pydantic (shapes, ranges)--> cross checks (layers, slices)--> ExperimentsConfig

A bad file is refused as a whole with ConfigError, whose message names the file, the line and the
dotted field of every problem, e.g.

    experiments.yaml:14: experiments.ranker_v1.variants: weights sum to 0.9, they must sum to 1

What is checked: every field's type and range; variant weights > 0 summing to 1 (the SDK would
silently fall back to equal weights, we refuse instead); coverage in (0, 1]; start and stop with a
UTC offset and stop after start; a layer that is declared; the slices of one layer's experiments
([start, end) of the layer's hash space) not overlapping; salts unique; duplicate YAML keys.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# seeds are hashed by code point; ASCII keeps that equal to the UTF-8 bytes other SDKs hash
Salt = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def _aware(t: datetime | None) -> datetime | None:
    if t is not None and t.utcoffset() is None:
        raise ValueError("needs a UTC offset, e.g. 2026-01-01T00:00:00Z")
    return t


AwareTime = Annotated[datetime, AfterValidator(_aware)]


class ConfigError(ValueError):
    """The experiments file is refused; `problems` are lines `file:line: field: message`."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{path}: refused ({len(problems)} problem{'s' * (len(problems) != 1)}):\n  "
                         + "\n  ".join(problems))


class Audience(StrEnum):
    """Who may enter: everyone, only users the system has not seen, or only users it has.

    "returning" = the user has a non-empty seen-set in Redis (`<project>:seen:<id>`, every item the
    user rated or clicked: written by `make train`'s backfill and by the stream processor)."""

    all = "all"
    new = "new"
    returning = "returning"


class Holdout(BaseModel):
    """Global holdout: a fixed share of all users enters no experiment (the long-run baseline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    share: float = Field(..., ge=0.0, lt=0.5)
    salt: Salt


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., description="the experiment key (filled from the mapping key, checked there)")
    description: str = ""
    salt: Salt = Field(..., description="hash seed; a new salt reshuffles every user")
    variants: dict[Name, float] = Field(..., description="variant -> weight; the first is the control")
    coverage: float = Field(1.0, gt=0.0, le=1.0, description="share of eligible users that enters")
    layer: Name | None = Field(None, description="mutually exclusive with the layer's other experiments")
    layer_range: tuple[float, float] = Field((0.0, 1.0), description="[start, end) of the layer's hash space")
    audience: Audience = Audience.all
    start: AwareTime
    stop: AwareTime | None = None

    @field_validator("variants")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if len(v) < 2:
            raise ValueError(f"needs at least 2 variants, got {len(v)}")
        bad = [k for k, w in v.items() if not (isinstance(w, int | float) and math.isfinite(w) and w > 0)]
        if bad:
            raise ValueError(f"weights must be > 0 (variant {', '.join(bad)})")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights sum to {total:g}, they must sum to 1")
        return v

    @field_validator("layer_range")
    @classmethod
    def _range(cls, r: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= r[0] < r[1] <= 1.0:
            raise ValueError(f"needs 0 <= start < end <= 1, got [{r[0]}, {r[1]})")
        return r

    @model_validator(mode="after")
    def _window(self) -> Experiment:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop.isoformat()}) must be after start ({self.start.isoformat()})")
        return self

    @property
    def control(self) -> str:
        return next(iter(self.variants))

    @property
    def weights(self) -> list[float]:
        return list(self.variants.values())

    def status(self, now: datetime) -> str:
        """scheduled | running | stopped at `now` (aware)."""
        if now < self.start:
            return "scheduled"
        if self.stop is not None and now >= self.stop:
            return "stopped"
        return "running"


class ExperimentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    holdout: Holdout | None = None
    layers: dict[Name, str] = Field(default_factory=dict, description="layer -> what it varies")
    experiments: dict[Name, Experiment]

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        """The mapping key is the experiment's name (so it is never written twice)."""
        if isinstance(data, dict) and isinstance(data.get("experiments"), dict):
            data = {**data, "experiments": {k: {**v, "name": k} if isinstance(v, dict) else v
                                            for k, v in data["experiments"].items()}}
        return data


def cross_problems(cfg: ExperimentsConfig) -> list[tuple[tuple, str]]:
    """Checks across experiments: (path, message) pairs."""
    out: list[tuple[tuple, str]] = []
    salts: dict[str, str] = {}
    if cfg.holdout is not None:
        salts[cfg.holdout.salt] = "holdout"
    by_layer: dict[str, list[Experiment]] = {}
    for e in cfg.experiments.values():
        if e.salt in salts:
            out.append((("experiments", e.name, "salt"), f"salt {e.salt!r} is already used by {salts[e.salt]}"))
        salts.setdefault(e.salt, f"experiment {e.name}")
        if e.layer is not None:
            if e.layer not in cfg.layers:
                out.append((("experiments", e.name, "layer"),
                            f"layer {e.layer!r} is not declared under `layers:` ({', '.join(cfg.layers) or 'none'})"))
            by_layer.setdefault(e.layer, []).append(e)
    for layer, exps in by_layer.items():
        exps = sorted(exps, key=lambda x: x.layer_range)
        for a, b in zip(exps, exps[1:], strict=False):
            if b.layer_range[0] < a.layer_range[1]:
                out.append((("experiments", b.name, "layer_range"),
                            f"[{b.layer_range[0]}, {b.layer_range[1]}) overlaps {a.name}'s "
                            f"[{a.layer_range[0]}, {a.layer_range[1]}) in layer {layer!r}"))
    return out


# ------------------------------------------------------------------ YAML with line numbers
def _plain(node: yaml.Node, path: tuple, lines: dict[tuple, int], dupes: list[str]) -> Any:
    """A composed YAML node -> plain Python, recording the line (1-based) of each path's key."""
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k_node, v_node in node.value:
            key = _scalar(k_node)
            line = k_node.start_mark.line + 1
            if key in out:
                dupes.append(f"{line}: {'.'.join(map(str, (*path, key)))}: duplicate key (the one at line "
                             f"{lines[(*path, key)]} would be silently replaced)")
                continue
            lines[(*path, key)] = line
            out[key] = _plain(v_node, (*path, key), lines, dupes)
        return out
    if isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            lines[(*path, i)] = v.start_mark.line + 1
        return [_plain(v, (*path, i), lines, dupes) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """One scalar (or, for a complex key, any node) with the tag the composer resolved (int, timestamp...)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int:
    """The line of the deepest part of `loc` that exists in the file (a missing field: its parent)."""
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return 1


def parse(text: str, source: str = "<experiments>") -> ExperimentsConfig:
    """Validate the YAML text; raises ConfigError naming line and field of each problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(source, [f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if root is None:
        raise ConfigError(source, [f"{source}:1: the file is empty; it needs an `experiments:` mapping"])
    lines: dict[tuple, int] = {(): root.start_mark.line + 1}
    dupes: list[str] = []
    data = _plain(root, (), lines, dupes)
    if dupes:
        raise ConfigError(source, [f"{source}:{d}" for d in dupes])
    try:
        cfg = ExperimentsConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(x for x in err["loc"] if x != "[key]")  # a bad mapping key: name the key itself
            where = ".".join(map(str, loc)) or "<root>"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{_line_of(loc, lines)}: {where}: {msg}")
        raise ConfigError(source, problems) from None
    cross = cross_problems(cfg)
    if cross:
        raise ConfigError(source, [f"{source}:{_line_of(p, lines)}: {'.'.join(p)}: {m}" for p, m in cross])
    return cfg


def load(path: Path) -> ExperimentsConfig:
    """Read and validate an experiments file (ConfigError when it is refused, naming the fix)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot be read ({exc.strerror}); set ASSIGNMENT_EXPERIMENTS "
                                 "to the experiments file"]) from None
    return parse(text, source=str(path))
