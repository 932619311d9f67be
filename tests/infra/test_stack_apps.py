"""The stream processor and the drift monitor as native apps of the stack (`make stack`)."""

from __future__ import annotations

import pytest

from minirec.infra import stack
from minirec.infra.process import InfraError
from minirec.settings import Settings


def test_stream_app_uses_the_settings(tmp_path):
    s = Settings(run_dir=tmp_path / "run", stream_metrics_port=3999, drift_metrics_port=3998)
    app, drift = stack.apps(s)
    assert app.name == "stream" and app.ports == [3999]
    assert app.argv[-2:] == ["-m", "services.stream"]
    assert app.state_dir == tmp_path / "run" / "stream"
    assert drift.name == "drift" and drift.ports == [3998] and drift.argv[-3:] == ["-m", "monitoring.drift", "loop"]
    assert drift.env["DO_NOT_TRACK"] == "1"  # Evidently's telemetry stays off


def test_alertmanager_is_part_of_the_infrastructure(tmp_path):
    s = Settings(run_dir=tmp_path / "run", alertmanager_port=3997, drift_metrics_port=3998)
    am = {srv.name: srv for srv in stack.servers(s)}["alertmanager"]
    assert am.ports == [3997] and "--cluster.listen-address=" in am.argv


def test_up_apps_without_a_feast_registry_names_the_fix(tmp_path):
    s = Settings(run_dir=tmp_path / "run", feature_repo_dir=tmp_path / "repo")
    with pytest.raises(InfraError, match="make train"):
        stack.up_apps(s, echo=lambda _: None)
    assert not (tmp_path / "run" / "stream").exists()  # nothing was started


def test_status_reports_a_stopped_app_as_optional(tmp_path):
    s = Settings(run_dir=tmp_path / "run")
    rows = {r["name"]: r for r in stack.status(s)}
    assert rows["stream"]["optional"] is True and rows["stream"]["running"] is False
    assert "optional" not in rows["redis"]
