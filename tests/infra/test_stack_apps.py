"""The stream processor as a native app of the stack (`make stack`)."""

from __future__ import annotations

import pytest

from minirec.infra import stack
from minirec.infra.process import InfraError
from minirec.settings import Settings


def test_stream_app_uses_the_settings(tmp_path):
    s = Settings(run_dir=tmp_path / "run", stream_metrics_port=3999)
    app = next(a for a in stack.apps(s) if a.name == "stream")
    assert app.ports == [3999]
    assert app.argv[-2:] == ["-m", "services.stream"]
    assert app.state_dir == tmp_path / "run" / "stream"


def test_assignment_app_uses_the_settings(tmp_path):
    s = Settings(run_dir=tmp_path / "run", assignment_port=3998)
    app = next(a for a in stack.apps(s) if a.name == "assignment")
    assert app.ports == [3998] and app.host == s.assignment_host
    assert app.argv[-2:] == ["-m", "services.assignment"]
    assert app.state_dir == tmp_path / "run" / "assignment"
    assert [a.name for a in stack.apps(s)] == ["stream", "assignment"]


def test_up_apps_without_a_feast_registry_names_the_fix(tmp_path):
    s = Settings(run_dir=tmp_path / "run", feature_repo_dir=tmp_path / "repo")
    with pytest.raises(InfraError, match="make train"):
        stack.up_apps(s, echo=lambda _: None)
    assert not (tmp_path / "run" / "stream").exists()  # nothing was started


def test_status_reports_a_stopped_app_as_optional(tmp_path):
    s = Settings(run_dir=tmp_path / "run")
    rows = {r["name"]: r for r in stack.status(s)}
    assert rows["stream"]["optional"] is True and rows["stream"]["running"] is False
    assert rows["assignment"]["optional"] is True and rows["assignment"]["running"] is False
    assert "optional" not in rows["redis"]
