"""The registry on a real BentoML store: immutable versions, the stage log, guarded promotion."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minirec.pipeline.context import new_run_id
from minirec.train import registry as R


def _bundle(path, payload: bytes = b"weights-1"):
    """Files with the bundle's names (the registry copies and hashes them; it does not parse them)."""
    path.mkdir(parents=True, exist_ok=True)
    for name in R.BUNDLE_FILES:
        (path / name).write_bytes(payload + name.encode())
    return path


def test_bentoml_store_contract(tmp_path):
    # the one private-API workaround (BentoML 1.4.40): fails here first when an upgrade moves it
    store = tmp_path / "store"
    with R._create(store, "probe:v1", {"run_id": "v1"}, {"k": 1}) as m:
        (Path(m.path) / "note.txt").write_text("x")
    entries = list(R._store(store).list("probe"))
    assert [str(e.tag) for e in entries] == ["probe:v1"]
    assert entries[0].info.metadata["k"] == 1 and entries[0].info.labels["run_id"] == "v1"
    assert (Path(entries[0].path) / "note.txt").read_text() == "x"


def test_same_version_same_files_is_a_no_op_other_files_refused(tmp_path):
    store, b1 = tmp_path / "store", _bundle(tmp_path / "b1")
    tag = R.register(b1, store_path=store, name="tt", version="r1", metadata={"n": 1})
    assert R.register(b1, store_path=store, name="tt", version="r1", metadata={"n": 1}) == tag
    assert [m.tag for m in R.list_models(store, "tt")] == ["tt:r1"]
    R.promote(store, tag, by="test", reason="first")
    with pytest.raises(R.RegistryError, match="immutable"):
        R.register(_bundle(tmp_path / "b2", b"weights-2"), store_path=store, name="tt", version="r1", metadata={})
    prod = R.get_stage(store, "tt", "production")
    assert prod.tag == tag and prod.metadata["content_sha256"] == R.content_hash(b1)  # production untouched
    assert (prod.path / "model.pt").read_bytes() == b"weights-1model.pt"


def test_new_candidate_archives_the_older_one_and_promotion_archives_production(tmp_path):
    store = tmp_path / "store"
    t1 = R.register(_bundle(tmp_path / "a", b"a"), store_path=store, name="tt", version="r1", metadata={})
    R.promote(store, t1, by="alice", reason="baseline")
    t2 = R.register(_bundle(tmp_path / "b", b"b"), store_path=store, name="tt", version="r2", metadata={})
    t3 = R.register(_bundle(tmp_path / "c", b"c"), store_path=store, name="tt", version="r3", metadata={})
    stages = {m.tag: m.stage for m in R.list_models(store, "tt")}
    assert stages == {t1: "production", t2: "archived", t3: "candidate"}
    assert R.get_stage(store, "tt", "candidate").tag == t3
    R.promote(store, t3, by="bob", reason="A/B won")
    stages = {m.tag: m.stage for m in R.list_models(store, "tt")}
    assert stages == {t1: "archived", t2: "archived", t3: "production"}
    last = R.history(store, "tt")[-1]
    assert (last["tag"], last["stage"], last["by"], last["reason"]) == (t3, "production", "bob", "A/B won")
    assert R.get_stage(store, "tt", "candidate") is None


def test_promotion_refused_when_production_moved_since_the_decision(tmp_path):
    store = tmp_path / "store"
    t1 = R.register(_bundle(tmp_path / "a", b"a"), store_path=store, name="tt", version="r1", metadata={})
    t2 = R.register(_bundle(tmp_path / "b", b"b"), store_path=store, name="tt", version="r2", metadata={})
    R.promote(store, t1, by="x", reason="someone else")
    with pytest.raises(R.RegistryError, match="production changed"):
        R.promote(store, t2, expect_production=None)  # the decision saw no production
    assert R.get_stage(store, "tt", "production").tag == t1
    assert R.promote(store, t2, expect_production=t1) == t2


def test_identity_follows_content(tmp_path):
    store = tmp_path / "store"
    t1 = R.register(_bundle(tmp_path / "a", b"a"), store_path=store, name="tt", version="r1", metadata={})
    t2 = R.register(_bundle(tmp_path / "b", b"b"), store_path=store, name="tt", version="r2", metadata={})
    i1, i2 = (R.get_model(store, t).identity for t in (t1, t2))
    assert i1.startswith("tt:r1@") and i2.startswith("tt:r2@") and i1.split("@")[1] != i2.split("@")[1]


def test_torn_last_line_of_the_stage_log_is_ignored(tmp_path):
    store = tmp_path / "store"
    t1 = R.register(_bundle(tmp_path / "a", b"a"), store_path=store, name="tt", version="r1", metadata={})
    R.promote(store, t1, by="x", reason="y")
    with open(store / R.STAGES_FILE, "a") as f:
        f.write('{"model": "tt", "tag": "tt:r1", "sta')  # a crash mid-append
    assert R.get_stage(store, "tt", "production").tag == t1


def test_run_ids_are_unique_valid_versions_and_reproducible_from_a_seed():
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)
    assert new_run_id(seed="dagrun-1")[-6:] == new_run_id(seed="dagrun-1")[-6:]
    assert new_run_id(seed="dagrun-1")[-6:] != new_run_id(seed="dagrun-2")[-6:]


def test_cli_lists_models_and_history(tmp_path):
    store = tmp_path / "store"
    t1 = R.register(_bundle(tmp_path / "a", b"a"), store_path=store, name="two_tower", version="r1",
                    metadata={"valid_ndcg@10": 0.3})
    R.promote(store, t1, by="carol", reason="because")
    env = {"MODEL_STORE_DIR": str(store), "PATH": "/usr/bin:/bin"}
    models = subprocess.run([sys.executable, "-m", "minirec.pipeline", "models"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert models.returncode == 0, models.stderr
    assert "two_tower:r1" in models.stdout and "production" in models.stdout and "0.3" in models.stdout
    hist = subprocess.run([sys.executable, "-m", "minirec.pipeline", "history"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert hist.returncode == 0 and "by carol: because" in hist.stdout, hist.stderr
    assert json.loads((store / R.STAGES_FILE).read_text().splitlines()[-1])["by"] == "carol"
