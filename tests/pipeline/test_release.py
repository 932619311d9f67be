"""The release, end to end on a small trained run (real Redis, real BentoML store).

One training run is shared (session fixture, read only); each test copies its
run folder under new run ids into its own store, feature repo and Feast
project, then runs the release steps, so no test sees another's registry.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import replace

import pytest
import redis as redis_lib
import yaml

from minirec import pipeline as P
from minirec.features.seen import seen_key
from minirec.features.store import copy_repo
from minirec.train import registry as R
from minirec.train.gate import GateError

pytestmark = pytest.mark.slow
RELEASE = ("gate", "build_index", "register", "materialize", "backfill_seen", "promote", "export_reference")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_lake, redis_server, pass_the_baseline_rule):
    """validate_data .. evaluate once; later steps run per test on copies."""
    root = tmp_path_factory.mktemp("trained")
    ctx = P.RunContext.from_settings(
        run_id="base", data_dir=synthetic_lake, artifacts_dir=root / "artifacts",
        feature_repo=copy_repo(root / "feature_repo"), model_store=root / "unused-store",
        feast_project=f"t{uuid.uuid4().hex[:8]}", redis_host=redis_server.host, redis_port=redis_server.port,
        train={"epochs": 2, "progress": False})
    P.run(ctx, ["validate_data", "build_training_set", "train", "train_ranker", "evaluate"])
    pass_the_baseline_rule(ctx)  # these tests are about the release, not quality
    return ctx


@pytest.fixture
def world(tmp_path, trained_run):
    """A fresh store/repo/project; `clone(run_id)` copies the trained run folder under that id."""
    store, repo, project = tmp_path / "store", copy_repo(tmp_path / "feature_repo"), f"r{uuid.uuid4().hex[:8]}"

    def clone(run_id: str, **overrides) -> P.RunContext:
        ctx = replace(trained_run, run_id=run_id, artifacts_dir=tmp_path / "artifacts", model_store=store,
                      feature_repo=repo, feast_project=project, **overrides)
        shutil.copytree(trained_run.run_dir, ctx.run_dir)
        return ctx

    return clone


def _stages(ctx) -> dict[str, str]:
    return {m.tag: m.stage for m in R.list_models(ctx.model_store, ctx.model_name)}


def _engine(ctx):
    from services.recommender.engine import Engine, EngineConfig

    cfg = EngineConfig(model_store=ctx.model_store, model_name=ctx.model_name, feature_repo=ctx.feature_repo,
                       feature_service="two_tower_v1", project=ctx.feast_project, redis_host=ctx.redis_host,
                       redis_port=ctx.redis_port, redis_timeout_s=0.5, items_table=ctx.data_dir / "items.parquet",
                       kafka_bootstrap="127.0.0.1:1", topic_impressions="unused", impression_buffer=10, overfetch=2,
                       reload_interval_s=3600, impressions=False)
    return Engine(cfg, start=False)


def test_every_retrain_is_a_new_version_and_a_running_service_loads_it(world):
    first = world("20260101-000000-aaaaaa")
    P.run(first, RELEASE)
    engine = _engine(first)
    try:
        assert engine.refresh() and engine.status.models["control"].tag == "two_tower:20260101-000000-aaaaaa"
        second = world("20260102-000000-bbbbbb")
        P.run(second, RELEASE)
        assert _stages(second) == {"two_tower:20260101-000000-aaaaaa": "archived",
                                   "two_tower:20260102-000000-bbbbbb": "production"}
        assert engine.refresh()  # the watcher's tick: a new identity is loaded
        assert engine.status.models["control"].tag == "two_tower:20260102-000000-bbbbbb"
        assert not engine.refresh()  # nothing changed: nothing reloaded
    finally:
        engine.close()
    promo = R.history(second.model_store, second.model_name)[-1]
    assert promo["stage"] == "production" and promo["by"] == "pipeline" and "gate passed" in promo["reason"]


def test_gate_rescores_production_instead_of_trusting_its_stored_metric(world):
    prod = world("20260101-000000-aaaaaa")
    P.run(prod, RELEASE)
    # production is re-scored stage for stage (gating.py): its retrieval stage, as it measured it itself
    real = P.read_json(prod.run_dir / "metrics_valid.json")["retrieval_only"]["ndcg@10"]
    cand = world("20260102-000000-bbbbbb")
    # the candidate's validation score: above every baseline, well below production's
    valid = P.read_json(cand.run_dir / "metrics_valid.json")
    worse = real - 0.05
    for name in (n for n, v in valid.items() if isinstance(v, dict)):  # skips the "protocol" key
        valid[name]["ndcg@10"] = worse if name == "two_tower" else worse - 0.01
    P.write_json(cand.run_dir / "metrics_valid.json", valid)
    # and production's stored metric lies low: a gate reading it would pass
    meta_path = R.get_model(prod.model_store, "two_tower:20260101-000000-aaaaaa").path / "model.yaml"
    info = yaml.safe_load(meta_path.read_text())
    info["metadata"]["valid_ndcg@10"] = 0.0
    meta_path.write_text(yaml.safe_dump(info, sort_keys=False))
    assert R.get_model(prod.model_store, "two_tower:20260101-000000-aaaaaa").metadata["valid_ndcg@10"] == 0.0
    with pytest.raises(GateError, match="below production") as err:
        P.gate(cand)
    assert f"{real:.4f}" in str(err.value)  # the re-scored value, equal to what production measured itself
    decision = json.loads((cand.run_dir / "gate.json").read_text())
    assert decision["production"] == pytest.approx(real, abs=1e-9)
    assert decision["production_tag"] == "two_tower:20260101-000000-aaaaaa"
    assert R.get_stage(prod.model_store, "two_tower", "production").tag == "two_tower:20260101-000000-aaaaaa"


def test_a_failed_release_step_leaves_production_serving(world, redis_server):
    prod = world("20260101-000000-aaaaaa")
    P.run(prod, RELEASE)
    cand = world("20260102-000000-bbbbbb", redis_port=1)  # Redis unreachable from materialize on
    P.run(cand, ("gate", "build_index", "register"))
    with pytest.raises(Exception, match="Redis did not answer"):
        P.run_step("materialize", cand)
    with pytest.raises(P.PipelineError, match="materialize.json is missing"):
        P.run_step("promote", cand)
    assert _stages(cand) == {"two_tower:20260101-000000-aaaaaa": "production",
                             "two_tower:20260102-000000-bbbbbb": "candidate"}


def test_promotion_refused_when_production_changed_after_the_gate(world):
    a = world("20260101-000000-aaaaaa")
    P.run(a, RELEASE)
    b = world("20260102-000000-bbbbbb")
    P.run(b, ("gate", "build_index", "register", "materialize", "backfill_seen"))
    c = world("20260103-000000-cccccc")
    P.run(c, RELEASE)  # another run promoted in between
    with pytest.raises(R.RegistryError, match="production changed"):
        P.run_step("promote", b)
    assert R.get_stage(b.model_store, "two_tower", "production").tag == "two_tower:20260103-000000-cccccc"


def test_release_holds_out_the_future_and_no_promote_leaves_a_candidate(world):
    ctx = world("20260101-000000-aaaaaa", auto_promote=False)
    P.run(ctx, RELEASE)
    assert _stages(ctx) == {"two_tower:20260101-000000-aaaaaa": "candidate"}
    assert P.read_json(ctx.run_dir / "promote.json")["promoted"] is False
    cut = P.read_json(ctx.run_dir / "training_set.json")["window"]["cut_test"]
    inter = P.context.load_run_tables(ctx)["interactions"]
    held_out = inter[inter["event_timestamp"] >= cut]
    client = redis_lib.Redis(host=ctx.redis_host, port=ctx.redis_port)
    try:
        # a user's seen-set holds the items before the cut and none they first rated after it
        u = int(held_out["user_id"].value_counts().index[0])
        before = set(inter[(inter["user_id"] == u) & (inter["event_timestamp"] < cut)]["item_id"].astype(int))
        only_after = set(held_out[held_out["user_id"] == u]["item_id"].astype(int)) - before
        seen = {int(x) for x in client.smembers(seen_key(ctx.feast_project, u))}
        assert seen == before and only_after and not (seen & only_after)
    finally:
        client.close()
    assert P.read_json(ctx.run_dir / "materialize.json")["end"] < cut  # online features stop before the cut
