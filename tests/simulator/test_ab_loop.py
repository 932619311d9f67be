"""The experiment path end to end on real services: the simulator asks the assignment service for each
user's arm, the recommender serves each arm from its own registered model (production vs a candidate whose
item map is shuffled: a real quality gap), the stream processor writes exposures, impressions and clicks to
the lake, and the readout names the better arm with the sample-ratio check passing."""

from __future__ import annotations

import uuid

import pytest

from minirec.ab.config import load
from minirec.ab.data import ReadoutError, load_events
from minirec.ab.readout import readout
from minirec.infra.kafka import create_topics
from services.simulator.simulate import simulate
from tests.assignment.conftest import EXPERIMENTS, start_service
from tests.serving.conftest import (
    permuted_bundle,
    register_model,
    serve,
    service_env,
    world_bundle_dir,
)
from tests.stream.conftest import FeastWorld, InProcess, stream_config, wait_for

pytestmark = [pytest.mark.infra, pytest.mark.slow]


def test_simulated_experiment_names_the_better_arm(world, kafka_broker, redis_server, tmp_path):
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{tag}" for k in ("interactions", "impressions", "exposures", "deadletter")}
    create_topics(kafka_broker.bootstrap, list(topics.values()), partitions=3)
    store = tmp_path / "store"
    prod = register_model(store, world_bundle_dir(world), "good", stage="production")
    permuted_bundle(world, tmp_path / "bad_bundle")
    cand = register_model(store, tmp_path / "bad_bundle", "bad")  # the candidate = the treatment arm
    rec = serve(tmp_path / "rec", service_env(world, kafka_bootstrap=kafka_broker.bootstrap,
                                              topic=topics["impressions"], model_store=store))
    asg = start_service(tmp_path / "asg", kafka_broker.bootstrap, redis_server.port, topic=topics["exposures"],
                        project=world.project)
    fw = FeastWorld(repo=world.feature_repo, project=world.project, redis_host=world.redis_host,
                    redis_port=world.redis_port, items_table=world.data_dir / "items.parquet")
    lake = tmp_path / "lake"
    proc = InProcess(stream_config(kafka_broker, topics, fw, lake))
    try:
        summary = simulate(data_dir=world.data_dir, recommender_url=rec.url, kafka_bootstrap=kafka_broker.bootstrap,
                           topic=topics["interactions"], max_sessions=1500, speedup=1e9, seed=3, noise=0.0,
                           exclude_seen=False, concurrency=8, progress=False, assignment_url=asg.url,
                           experiment="ranker_v1")
        assert summary.errors == {} and set(summary.by_variant) == {"control", "treatment"}, summary.as_dict()

        def complete():
            try:
                ev = load_events(lake, "ranker_v1")
            except ReadoutError:
                return None
            return ev if len(ev.impressions) >= summary.requests and len(ev.clicks) >= summary.clicks else None

        ev = wait_for(complete, 90, "the lake to hold every impression and click of the run", every_s=1)
    finally:
        proc.stop()
        asg.stop()
        rec.stop()
    r = readout(ev, load(EXPERIMENTS).experiments["ranker_v1"])
    assert not r["srm"]["blocked"], r["srm"]
    assert r["arms"]["control"]["users"] > 50 and r["arms"]["treatment"]["users"] > 50, r["arms"]
    assert r["decision"]["winner"] == "control", (r["decision"], r["arms"])  # production beats the shuffled model
    assert r["arms"]["control"]["ctr"] > r["arms"]["treatment"]["ctr"]
    assert r["diagnostics"]["lists_served_from_another_arm"] == 0, r["diagnostics"]
    assert prod != cand
