"""The page and its JSON without the other services: every missing part renders as "not available",
never as an error page; bad input gets a 4xx naming the problem (in-process app, no servers)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient

from minirec.infra.process import free_port
from services.explorer.app import create_app
from services.explorer.settings import ExplorerConfig


@pytest.fixture
def cfg(movielens, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return dataclasses.replace(
        ExplorerConfig.from_settings(), data_dir=movielens, lake_dir=tmp_path / "lake", ab_dir=tmp_path / "ab",
        recommender_url=dead, assignment_url=dead, drift_metrics_url=f"{dead}/metrics",
        feature_repo=tmp_path / "no_repo", bootstrap=f"127.0.0.1:{free_port()}", timeout_s=0.5)


@pytest.fixture
def client(cfg):
    with TestClient(create_app(cfg)) as c:
        yield c


def test_every_panel_says_not_available_when_nothing_runs(client):
    r = client.get("/", params={"user": 196})
    assert r.status_code == 200, r.text
    for panel in ("assignment", "arm-control", "arm-treatment", "features", "readout", "drift"):
        start = r.text.index(f'id="{panel}"')
        assert "not available:" in r.text[start:start + 1500], panel
    assert "ratings in the dataset" in r.text  # history comes from the files, so it is there
    view = client.get("/api/user/196").json()
    assert view["history"]["available"] and view["history"]["count"] > 0
    assert view["history"]["recent"][0]["title"]  # titles, not bare ids
    assert not view["assignment"]["available"] and "does not answer" in view["assignment"]["note"]
    assert "make ab-report EXP=ranker_v1" in view["readout"]["note"]
    assert "run `make train`" in view["features"]["note"]
    assert set(view["stages_ms"]) >= {"assign", "recommend_control", "recommend_treatment", "online_features"}


def test_a_readout_on_disk_is_shown(client, cfg):
    folder = cfg.ab_dir / cfg.experiment
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({
        "generated_at": "2026-12-05T00:00:00+00:00", "arms": {"control": {"users": 510, "ctr": 0.112},
                                                             "treatment": {"users": 498, "ctr": 0.095}},
        "srm": {"p": 0.7, "blocked": False}, "decision": {"winner": "control", "reason": "control better"},
        "command": "make ab-report EXP=ranker_v1"}))
    ro = client.get("/api/user/1").json()["readout"]
    assert ro["available"] and ro["winner"] == "control" and ro["arms"]["treatment"]["users"] == 498
    (folder / "report.json").write_text("{not json")
    ro = client.get("/api/user/1").json()["readout"]
    assert not ro["available"] and "is not a readout" in ro["note"]


def test_a_user_with_no_ratings_is_a_cold_start_note(client):
    view = client.get("/api/user/999999").json()
    assert not view["history"]["available"] and "no ratings" in view["history"]["note"]


@pytest.mark.parametrize("user", ["abc", "0", "-3", "1e3", str(2**60)])
def test_a_bad_user_id_is_a_422_naming_it(client, user):
    r = client.get("/", params={"user": user})
    assert r.status_code == 422 and "user must be" in r.text
    r = client.get(f"/api/user/{user}")
    assert r.status_code == 422 and r.json()["error"] == "invalid_user"


def test_random_redirects_to_a_dataset_user(client):
    r = client.get("/random", follow_redirects=False)
    assert r.status_code == 302
    uid = int(r.headers["location"].split("user=")[1])
    assert 1 <= uid <= 943


@pytest.mark.parametrize("body,field", [({"item_id": 5}, "user_id"), ({"user_id": 1, "item_id": 0}, "item_id"),
                                         ({"user_id": 1, "item_id": 5, "variant": "blue"}, "variant"),
                                         ({"user_id": "1", "item_id": 5}, "user_id")])
def test_a_bad_click_is_a_422_naming_the_field(client, body, field):
    r = client.post("/api/click", json=body)
    assert r.status_code == 422
    assert any(field in e["loc"] for e in r.json()["detail"]), r.json()


def test_a_click_with_kafka_down_is_queued_not_an_error(client):
    r = client.post("/api/click", json={"user_id": 1, "item_id": 5})
    assert r.status_code == 202 and r.json()["queued"] is True
