"""POST /assign and friends against the real service process (session Kafka and Redis)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from minirec.ab.assign import Assigner
from minirec.ab.config import load
from minirec.events import MAX_ID
from tests.assignment.conftest import EXPERIMENTS

ASSIGNER = Assigner(load(EXPERIMENTS))
ERROR_KEYS = {"code", "message", "field"}


def expected(user_id: int, experiment: str = "ranker_v1") -> dict:
    a = ASSIGNER.assign(experiment, user_id, datetime.now(UTC), returning=lambda _u: False)
    return {"experiment": experiment, "variant": a.variant, "in_experiment": a.in_experiment, "reason": a.reason}


def test_assign_answers_what_the_bucketing_decides(service):
    reasons = set()
    for uid in range(1, 401):
        r = service.assign(uid)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == expected(uid), uid
        reasons.add(r.json()["reason"])
    assert {"assigned", "holdout", "outside_layer"} <= reasons  # the sample covered every branch
    again = [service.assign(uid).json() for uid in range(1, 401)]
    assert again == [expected(uid) for uid in range(1, 401)]  # sticky


def test_the_split_is_half_half(service):
    answers = [service.assign(uid).json() for uid in range(10_000, 12_000)]
    inside = [a["variant"] for a in answers if a["in_experiment"]]
    assert 0.80 < len(inside) / len(answers) < 0.91  # 0.95 not held out x 0.9 of the ranking layer
    assert abs(inside.count("treatment") / len(inside) - 0.5) < 0.04


@pytest.mark.parametrize("body,status,code,field", [
    ({"user_id": 1, "experiment": "nope"}, 404, "unknown_experiment", "experiment"),
    ({"user_id": 1, "experiment": "title_badges_v0"}, 409, "experiment_stopped", "experiment"),
    ({"user_id": 0, "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": -5, "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": MAX_ID + 1, "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": "196", "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": 1.5, "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": True, "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": None, "experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"experiment": "ranker_v1"}, 422, "invalid_request", "user_id"),
    ({"user_id": 1}, 422, "invalid_request", "experiment"),
    ({"user_id": 1, "experiment": ""}, 422, "invalid_request", "experiment"),
    ({"user_id": 1, "experiment": "x" * 129}, 422, "invalid_request", "experiment"),
    ({"user_id": 1, "experiment": "ranker_v1", "variant": "treatment"}, 422, "invalid_request", "variant"),
    ([{"user_id": 1, "experiment": "ranker_v1"}], 422, "invalid_request", None),
])
def test_bad_requests_get_a_4xx_naming_the_problem(service, body, status, code, field):
    r = service.http.post("/assign", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) == ERROR_KEYS and err["code"] == code and err["field"] == field, err
    if field:
        assert field in err["message"]


@pytest.mark.parametrize("raw,status,code", [
    (b"{not json", 400, "bad_json"),
    (b"", 400, "bad_json"),
    (b'{"user_id": 1, "experiment": "ranker_v1"' + b" " * 5000 + b"}", 413, "body_too_large"),
])
def test_malformed_and_oversized_bodies(service, raw, status, code):
    r = service.http.post("/assign", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status and r.json()["code"] == code and set(r.json()) == ERROR_KEYS


def test_an_oversized_body_without_a_length_is_cut_off(service):
    def chunks():
        for _ in range(100):
            yield b" " * 1000

    r = service.http.post("/assign", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


def test_every_4xx_has_the_one_body_shape(service):
    for r in (service.http.get("/nope"), service.http.delete("/assign"), service.http.get("/assign"),
              service.http.post("/experiments")):
        assert 400 <= r.status_code < 500
        assert set(r.json()) == ERROR_KEYS, (r.request.method, r.request.url, r.text)
    assert service.http.get("/nope").json()["code"] == "not_found"
    assert service.http.delete("/assign").json()["code"] == "method_not_allowed"


def test_experiments_lists_the_file_with_status(service):
    d = service.http.get("/experiments").json()
    by = {e["name"]: e for e in d["experiments"]}
    assert set(by) == set(ASSIGNER.cfg.experiments)
    assert by["ranker_v1"]["status"] == "running" and by["title_badges_v0"]["status"] == "stopped"
    assert by["ranker_v1"]["variants"] == {"control": 0.5, "treatment": 0.5}
    assert by["title_badges_v0"]["layer"] is None and by["ranker_v1"]["stop"] is None
    assert d["holdout"] == {"share": 0.05, "salt": "global-holdout-2026"}
    assert set(d["layers"]) == {"ranking", "presentation"}


def test_health_readiness_and_metrics(service):
    assert service.http.get("/healthz").json() == {"status": "ok"}
    ready = service.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["kafka"] == "connected"
    before = service.metric("assignment_requests_total", 'outcome="unknown_experiment"')
    service.assign(7, "nope")
    assert service.metric("assignment_requests_total", 'outcome="unknown_experiment"') == before + 1
    # unknown names share one label value, so clients cannot grow the label set
    assert 'experiment="nope"' not in service.http.get("/metrics").text
    assert service.metric("assignment_experiment_info", 'experiment="ranker_v1"') == 1


def test_a_scheduled_experiment_answers_409(service_factory, tmp_path):
    text = EXPERIMENTS.read_text().replace("    start: 2026-01-01T00:00:00Z\n    stop: null",
                                           "    start: 2099-01-01T00:00:00Z\n    stop: null")
    assert text != EXPERIMENTS.read_text()
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    svc = service_factory(experiments=path)
    r = svc.assign(1)
    assert r.status_code == 409 and r.json()["code"] == "experiment_not_started"
    assert "2099-01-01" in r.json()["message"]


def test_same_answers_after_a_restart(service_factory):
    first = service_factory("one")
    before = [first.assign(uid).json() for uid in range(1, 301)]
    first.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(first.url + "/healthz", timeout=1)
    second = service_factory("two")
    assert [second.assign(uid).json() for uid in range(1, 301)] == before
