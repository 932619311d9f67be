"""The project's own services as native apps of the stack (`make stack`), and Alertmanager."""

from __future__ import annotations

import pytest

from minirec.infra import stack
from minirec.infra.process import InfraError
from minirec.settings import Settings


def test_apps_use_the_settings(tmp_path):
    s = Settings(run_dir=tmp_path / "run", stream_metrics_port=3999, recommender_port=3998, drift_metrics_port=3996)
    apps = {a.name: a for a in stack.apps(s)}
    assert apps["stream"].ports == [3999] and apps["stream"].argv[-2:] == ["-m", "services.stream"]
    assert apps["stream"].state_dir == tmp_path / "run" / "stream"
    assert apps["recommender"].ports == [3998] and apps["recommender"].argv[-2:] == ["-m", "services.recommender"]
    drift = apps["drift"]
    assert drift.ports == [3996] and drift.argv[-3:] == ["-m", "monitoring.drift", "loop"]
    assert drift.env["DO_NOT_TRACK"] == "1"  # Evidently's telemetry stays off


def test_assignment_app_uses_the_settings(tmp_path):
    s = Settings(run_dir=tmp_path / "run", assignment_port=3997)
    app = next(a for a in stack.apps(s) if a.name == "assignment")
    assert app.ports == [3997] and app.host == s.assignment_host
    assert app.argv[-2:] == ["-m", "services.assignment"]
    assert app.state_dir == tmp_path / "run" / "assignment"
    assert [a.name for a in stack.apps(s)] == ["stream", "recommender", "assignment", "drift", "explorer"]


def test_explorer_app_uses_the_settings(tmp_path):
    s = Settings(run_dir=tmp_path / "run", explorer_port=3994)
    app = next(a for a in stack.apps(s) if a.name == "explorer")
    assert app.ports == [3994] and app.host == s.explorer_host
    assert app.argv[-2:] == ["-m", "services.explorer"]
    assert app.state_dir == tmp_path / "run" / "explorer"


def test_alertmanager_is_part_of_the_infrastructure(tmp_path):
    s = Settings(run_dir=tmp_path / "run", alertmanager_port=3995, drift_metrics_port=3998)
    am = {srv.name: srv for srv in stack.servers(s)}["alertmanager"]
    assert am.ports == [3995] and "--cluster.listen-address=" in am.argv


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
