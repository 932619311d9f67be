"""Model registry on the BentoML model store: immutable bundles, stages in a log, promotion.

Bundle layout (one BentoML model, name `two_tower` by default, version =
run id; files under `ModelRef.path`):

    config.json         TwoTowerConfig: vocabularies (user_ids, item_ids,
                        occupations), sizes, temperature, pop_weight w
    model.pt            state_dict of minirec.model.two_tower.TwoTower (or of an ensemble.Ensemble of them)
                        (both towers); load with `load_bundle(...).model`
    item_vectors.npy    (M, d+1) float32 index vectors [v, log1p(pop)]
    item_embeddings.npy (M, d) float32 L2-normalised item-tower outputs
                        (cosine "similar items": item_embeddings @ item_embeddings.T)
    item_ids.npy        (M,) int64 row -> MovieLens item_id
    index.faiss         FAISS HNSW (L2) over MIPS-augmented item_vectors
                        [x, sqrt(phi^2 - |x|^2)]; query it with
                        `minirec.train.ann.search(index, q, k)` (appends the 0)
    features.json       feature services and feature names the towers read

Labels: run_id (= the version) and, when the run was tracked, mlflow_run_id: the MLflow run
holding its parameters, per-epoch metrics and results (minirec/pipeline/tracking.py).

Entries are immutable: a version is registered once; registering it again
with the same files is a no-op, with other files an error. Nothing here
deletes an entry. Metadata carries `content_sha256` (over the bundle files),
so `ModelRef.identity` names what is served, not only what it is called.

Stages (candidate | production | archived) live in `<store>/stages.jsonl`,
an append-only log of {model, tag, stage, by, reason, at}: the newest line
for a tag is its stage, and the log is the audit trail of every decision.
A new candidate archives the older candidates; promotion archives the old
production model. Writers take `<store>/stages.lock` (flock), so two
processes never interleave a read-check-append.

Serving: `b = load_bundle(store, stage="production")`; read the user's
`two_tower_v1` features online; `q = user_vector(b.model, feats, user_id)`
(d+1,); `rows, _ = ann.search(b.index, q[None], k)` -> b.item_ids[rows[0]].

The store lives at settings.model_store_path (MODEL_STORE_DIR in .env), not
in ~/bentoml, so native runs, tests and containers point at one folder.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss

    from minirec.model.two_tower import TwoTower

STAGES = ("candidate", "production", "archived")
BUNDLE_FILES = ("config.json", "model.pt", "item_vectors.npy", "item_embeddings.npy", "item_ids.npy",
                "index.faiss", "features.json")
RANKER_FILES = ("ranker/model.txt", "ranker/ranker.json", "ranker/items.parquet")  # optional: the ranking stage
HOLDOUT_FILES = ("holdout/model.pt", "holdout/config.json")  # optional: the towers before the validation period
STAGES_FILE = "stages.jsonl"


def bundle_files(files_dir: Path) -> tuple[str, ...]:
    """The files of the bundle in `files_dir`: BUNDLE_FILES, plus RANKER_FILES / HOLDOUT_FILES when it has them."""
    return (BUNDLE_FILES + (RANKER_FILES if (files_dir / RANKER_FILES[0]).exists() else ())
            + (HOLDOUT_FILES if (files_dir / HOLDOUT_FILES[0]).exists() else ()))


class RegistryError(RuntimeError):
    """A registry operation cannot run; the message names the fix."""


# ---------------------------------------------------------------- the one BentoML workaround
def _store(path: Path):
    """A BentoML ModelStore rooted at `path`.

    Workaround, BentoML 1.4.40: the public `bentoml.models.*` functions take the
    store only through the private keyword `_model_store`, and the store class is
    only importable from `bentoml._internal`; the alternative (BENTOML_HOME) is
    read once per process, and tests use several stores in one process. This
    function and `_create` are the only places that touch either;
    tests/pipeline/test_registry.py::test_bentoml_store_contract fails when an
    upgrade moves them."""
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")  # no usage analytics leave the machine
    from bentoml._internal.models.model import ModelStore

    path.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(path))


def _create(store_path: Path, tag: str, labels: dict[str, str], metadata: dict[str, Any]):
    """Context manager creating a new store entry (see `_store` for why `_model_store`)."""
    import bentoml

    return bentoml.models.create(name=tag, labels=labels, metadata=metadata, _model_store=_store(store_path))


# ---------------------------------------------------------------- entries
@dataclass(frozen=True)
class ModelRef:
    """One registry entry as the rest of the project sees it."""

    tag: str  # "name:version"
    path: Path
    metadata: dict[str, Any]
    stage: str
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)  # run_id; mlflow_run_id when the run was tracked

    @property
    def version(self) -> str:
        return self.tag.split(":", 1)[1]

    @property
    def identity(self) -> str:
        """tag@content hash: changes whenever the served files change."""
        return f"{self.tag}@{str(self.metadata.get('content_sha256', ''))[:12]}"


def content_hash(files_dir: Path) -> str:
    """sha256 over the bundle files' names and bytes, in bundle_files order."""
    h = hashlib.sha256()
    for name in bundle_files(files_dir):
        h.update(name.encode() + b"\0")
        with open(files_dir / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _entries(store_path: Path, name: str) -> list[Any]:
    try:
        return list(_store(store_path).list(name))
    except Exception:  # no entry of that name yet
        return []


def list_models(store_path: Path, name: str) -> list[ModelRef]:
    """Every entry of `name`, oldest first, with its current stage."""
    stages = current_stages(store_path, name)
    refs = [ModelRef(tag=str(m.tag), path=Path(m.path), metadata=dict(m.info.metadata),
                     stage=stages.get(str(m.tag), m.info.labels.get("stage", "candidate")),
                     created=m.info.creation_time, labels=dict(m.info.labels))
            for m in _entries(store_path, name)]
    return sorted(refs, key=lambda r: r.created)


def get_model(store_path: Path, tag: str) -> ModelRef:
    name = tag.split(":", 1)[0]
    for ref in list_models(store_path, name):
        if ref.tag == tag:
            return ref
    raise RegistryError(f"no model {tag} in {store_path}; list them with `python -m minirec.pipeline models`")


def get_stage(store_path: Path, name: str, stage: str = "production") -> ModelRef | None:
    """The entry of `name` most recently moved to `stage`, or None."""
    by_tag = {r.tag: r for r in list_models(store_path, name)}
    for rec in reversed(history(store_path, name)):
        ref = by_tag.get(rec["tag"])
        if ref is not None and ref.stage == stage:
            return ref
    legacy = [r for r in by_tag.values() if r.stage == stage]  # stores written before the stage log
    return legacy[-1] if legacy else None


def register(files_dir: Path, *, store_path: Path, name: str, version: str, metadata: dict[str, Any],
             by: str = "pipeline", reason: str = "registered", labels: dict[str, str] | None = None) -> str:
    """Copy the bundle in `files_dir` into a new entry `name:version` as the candidate; returns the tag.

    Labels: run_id = version, plus `labels` (the pipeline adds mlflow_run_id, its MLflow run).

    Older candidates are archived (the treatment arm is never a stale model).
    The same version with the same files again is a no-op (a retried task);
    with other files it is refused: versions are immutable."""
    missing = [f for f in BUNDLE_FILES if not (files_dir / f).exists()]
    if missing:
        raise RegistryError(f"bundle incomplete in {files_dir}: missing {', '.join(missing)}; "
                            "run the train and build_index steps first; the registry was not changed")
    tag = f"{name}:{version}"
    digest = content_hash(files_dir)
    with _locked(store_path):
        existing = {r.tag: r for r in list_models(store_path, name)}
        if tag in existing:
            if existing[tag].metadata.get("content_sha256") == digest:
                return tag
            raise RegistryError(f"{tag} is already registered with different files; versions are immutable: "
                                "register under a new run id (the default for every run)")
        labels = {**(labels or {}), "run_id": version}
        with _create(store_path, tag, labels, _clean({**metadata, "content_sha256": digest})) as m:
            for f in bundle_files(files_dir):
                (Path(m.path) / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(files_dir / f, Path(m.path) / f)
        for old in existing.values():
            if old.stage == "candidate":
                _append(store_path, name, old.tag, "archived", by, f"superseded by candidate {tag}")
        _append(store_path, name, tag, "candidate", by, reason)
    return tag


def _clean(obj: Any) -> Any:
    """Metadata without None values (BentoML's model.yaml accepts only basic non-null types)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj if v is not None]
    return obj


def promote(store_path: Path, tag: str, *, by: str | None = None, reason: str = "manual promotion",
            expect_production: str | None | bool = False) -> str:
    """Make `tag` production; the previous production model is archived.

    `expect_production`: the production tag the caller's decision was based on
    (None = there was none); when production changed since, refuse. False skips
    the check (a person promoting by hand)."""
    ref = get_model(store_path, tag)
    name = tag.split(":", 1)[0]
    with _locked(store_path):
        prod = get_stage(store_path, name, "production")
        prod_tag = prod.tag if prod is not None else None
        if expect_production is not False and prod_tag != expect_production:
            raise RegistryError(f"production changed since the decision to promote {tag} "
                                f"(was {expect_production}, now {prod_tag}); rerun the gate")
        if prod_tag == ref.tag:
            return ref.tag
        who = by or getpass.getuser()
        if prod is not None:
            _append(store_path, name, prod.tag, "archived", who, f"replaced by {ref.tag}")
        _append(store_path, name, ref.tag, "production", who, reason)
    return ref.tag


def set_stage(store_path: Path, tag: str, stage: str, *, by: str | None = None, reason: str = "") -> None:
    """Record a stage change other than promotion (e.g. archive a candidate by hand)."""
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if stage == "production":
        promote(store_path, tag, by=by, reason=reason or "set_stage")
        return
    ref = get_model(store_path, tag)
    with _locked(store_path):
        _append(store_path, tag.split(":", 1)[0], ref.tag, stage, by or getpass.getuser(), reason)


# ---------------------------------------------------------------- the stage log
def history(store_path: Path, name: str | None = None) -> list[dict[str, Any]]:
    """Every stage record, oldest first (optionally for one model name)."""
    path = store_path / STAGES_FILE
    if not path.exists():
        return []
    recs = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line after a crash: ignored, the rest stands
                continue
    return [r for r in recs if name is None or r.get("model") == name]


def current_stages(store_path: Path, name: str) -> dict[str, str]:
    """tag -> its newest recorded stage."""
    return {r["tag"]: r["stage"] for r in history(store_path, name)}


def _append(store_path: Path, name: str, tag: str, stage: str, by: str, reason: str) -> None:
    rec = {"model": name, "tag": tag, "stage": stage, "by": by, "reason": reason,
           "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
    with open(store_path / STAGES_FILE, "a") as f:
        f.write(json.dumps(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())


@contextmanager
def _locked(store_path: Path) -> Iterator[None]:
    store_path.mkdir(parents=True, exist_ok=True)
    with open(store_path / "stages.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------- loading
@dataclass
class Bundle:
    tag: str
    model: TwoTower
    item_vectors: np.ndarray  # (M, d+1) float32
    item_embeddings: np.ndarray  # (M, d) float32
    item_ids: np.ndarray  # (M,) int64
    index: faiss.Index
    features: dict[str, Any]
    metadata: dict[str, Any]
    identity: str = ""
    ranker: Any = None  # minirec.rank.model.Ranker, None for a bundle without a ranking stage
    ranker_items: Any = None  # pandas frame: the ranker's item features at the release cut (catalogue order)


def load_dir(path: Path) -> tuple[TwoTower, dict[str, Any]]:
    """Model (both towers; an Ensemble of two-towers when its config says so) from a folder holding
    config.json and model.pt."""
    import torch

    from minirec.model.ensemble import build
    from minirec.model.two_tower import TwoTowerConfig

    if not (path / "config.json").exists() or not (path / "model.pt").exists():
        raise RegistryError(f"model directory {path} does not exist or lacks config.json/model.pt; "
                            "run `make train` first")
    cfg = TwoTowerConfig.from_dict(json.loads((path / "config.json").read_text()))
    model = build(cfg)  # a TwoTower, or an Ensemble of them (cfg.extra["ensemble"])
    model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    return model, cfg.to_dict()


def load_bundle(store_path: Path, name: str = "two_tower", tag: str | None = None,
                stage: str | None = "production") -> Bundle:
    """Load a bundle by tag, or the newest one in `stage`."""
    import faiss

    if tag is not None:
        ref = get_model(store_path, tag)
    else:
        ref = get_stage(store_path, name, stage or "production")
        if ref is None:
            raise RegistryError(f"no {name} model in stage {stage} under {store_path}; run `make train`")
    model, _ = load_dir(ref.path)
    p = ref.path
    return Bundle(
        tag=ref.tag, model=model,
        item_vectors=np.load(p / "item_vectors.npy"), item_embeddings=np.load(p / "item_embeddings.npy"),
        item_ids=np.load(p / "item_ids.npy"), index=faiss.read_index(str(p / "index.faiss")),
        features=json.loads((p / "features.json").read_text()), metadata=ref.metadata, identity=ref.identity,
        **_ranker(p),
    )


def _ranker(p: Path) -> dict[str, Any]:
    """The bundle's ranking stage (<bundle>/ranker/), if it has one."""
    if not (p / "ranker" / "model.txt").exists():
        return {}
    import pandas as pd

    from minirec.rank.model import Ranker

    return {"ranker": Ranker.load(p / "ranker"), "ranker_items": pd.read_parquet(p / "ranker" / "items.parquet")}
