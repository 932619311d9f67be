"""The experiments file: the repository's validates; a bad one is refused with its line and field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from minirec.ab.config import ConfigError, load, parse
from tests.ab.conftest import EXPERIMENTS

GOOD = EXPERIMENTS.read_text()


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth occurrence of `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


def refused(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, source="exp.yaml")
    assert "refused" in str(info.value)
    return info.value.problems


def test_the_repository_file_validates(experiments):
    assert "ranker_v1" in experiments.experiments
    r = experiments.experiments["ranker_v1"]
    assert r.variants == {"control": 0.5, "treatment": 0.5} and r.control == "control"
    assert r.status(datetime(2026, 12, 1, tzinfo=UTC)) == "running"
    assert experiments.experiments["title_badges_v0"].status(datetime(2026, 12, 1, tzinfo=UTC)) == "stopped"


@pytest.mark.parametrize("old,new,field,message", [
    ("      treatment: 0.5\n    coverage: 1.0\n    layer: ranking\n    layer_range: [0.0, 0.9]",
     "      treatment: 0.4\n    coverage: 1.0\n    layer: ranking\n    layer_range: [0.0, 0.9]",
     "experiments.ranker_v1.variants", "sum to 0.9"),
    ("    coverage: 0.5", "    coverage: 1.5", "experiments.list_length_v1.coverage", "less than or equal to 1"),
    ("    layer_range: [0.9, 1.0]", "    layer_range: [0.85, 1.0]", "experiments.cold_start_v1.layer_range",
     "overlaps ranker_v1"),
    ("    layer: presentation", "    layer: colours", "experiments.list_length_v1.layer", "not declared"),
    ("    audience: new", "    audience: lapsed", "experiments.cold_start_v1.audience", "'all', 'new' or 'returning'"),
    ("  ranker_v1:\n    description", "  Ranker-V1:\n    description", "experiments.Ranker-V1", "pattern"),
    ("    salt: list_length_v1-2026-12", "    salt: ranker_v1-2026-12", "experiments.list_length_v1.salt",
     "already used by experiment ranker_v1"),
    ("    stop: 2026-07-01T00:00:00Z", "    stop: 2026-05-01T00:00:00Z", "experiments.title_badges_v0",
     "must be after start"),
    ("    start: 2026-06-01T00:00:00Z", "    start: 2026-06-01 00:00:00", "experiments.title_badges_v0.start",
     "UTC offset"),
    ("    coverage: 0.5", "    coverage: 0.5\n    colour: blue", "experiments.list_length_v1.colour",
     "Extra inputs"),
    ("  share: 0.05", "  share: 0.75", "holdout.share", "less than 0.5"),
])
def test_a_bad_field_is_named_with_its_line(old, new, field, message):
    assert old in GOOD, old
    text = GOOD.replace(old, new, 1)
    problems = refused(text)
    assert len(problems) == 1, problems
    m = re.match(r"exp\.yaml:(\d+): ([^:]+): (.*)", problems[0])
    assert m, problems[0]
    assert m.group(2).startswith(field) and message in m.group(3), problems[0]
    # the line is the one that holds the field (or, for a problem of the whole entry, the entry's key)
    key = field.rsplit(".", 1)[-1]
    expected = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip().startswith(f"{key}:")]
    assert int(m.group(1)) in expected, (problems[0], expected)


def test_a_missing_field_points_at_its_experiment():
    text = GOOD.replace("    salt: cold_start_v1-2026-12\n", "")
    (problem,) = refused(text)
    assert problem == f"exp.yaml:{line_of(text, '  cold_start_v1:')}: experiments.cold_start_v1.salt: Field required"


def test_a_duplicate_key_is_refused_not_silently_replaced():
    text = GOOD.replace("  list_length_v1:", "  ranker_v1:", 1)
    (problem,) = refused(text)
    assert problem.startswith(f"exp.yaml:{line_of(text, '  ranker_v1:', 1)}: experiments.ranker_v1: duplicate key")
    assert f"line {line_of(text, '  ranker_v1:')}" in problem


def test_yaml_syntax_errors_and_empty_files_are_named():
    (problem,) = refused(GOOD.replace("      control: 0.5", "      control: [0.5", 1))
    assert "not valid YAML" in problem and re.match(r"exp\.yaml:\d+:", problem)
    assert "empty" in refused("")[0]


def test_every_problem_is_listed_at_once():
    text = GOOD.replace("    coverage: 0.5", "    coverage: 0").replace("  share: 0.05", "  share: -1")
    problems = refused(text)
    assert {p.split(": ")[1] for p in problems} == {"experiments.list_length_v1.coverage", "holdout.share"}


def test_an_unreadable_file_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="ASSIGNMENT_EXPERIMENTS"):
        load(tmp_path / "missing.yaml")
