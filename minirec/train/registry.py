"""Model registry on the BentoML model store: bundles, stages, promotion.

Bundle layout (one BentoML model, name `two_tower` by default, version =
run id; files under `bentoml.models.get(tag).path`):

    config.json         TwoTowerConfig: vocabularies (user_ids, item_ids,
                        occupations), sizes, temperature, pop_weight w
    model.pt            state_dict of minirec.model.two_tower.TwoTower
                        (both towers); load with `load_bundle(...).model`
    item_vectors.npy    (M, d+1) float32 index vectors [v, log1p(pop)]
    item_embeddings.npy (M, d) float32 L2-normalised item-tower outputs
                        (cosine "similar items": item_embeddings @ item_embeddings.T)
    item_ids.npy        (M,) int64 row -> MovieLens item_id
    index.faiss         FAISS HNSW (L2) over MIPS-augmented item_vectors
                        [x, sqrt(phi^2 - |x|^2)]; query it with
                        `minirec.train.ann.search(index, q, k)` (appends the 0)
    features.json       feature services and feature names the towers read

Labels: `stage` = candidate | production | archived, `run_id`.
Metadata: metrics (test and validation), data window, feature service,
git commit, ANN recall/latency, training seconds.

Serving: `b = load_bundle(stage="production")`; read the user's
`two_tower_v1` features online; `q = user_vector(b.model, feats, user_id)`
(d+1,); `rows, _ = ann.search(b.index, q[None], k)` -> b.item_ids[rows[0]].
Similar items: cosine over item_embeddings (no popularity term).

The store lives at settings.model_store_path (MODEL_STORE_DIR in .env), not
in ~/bentoml, so native runs, tests and containers point at one folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss

    from minirec.model.two_tower import TwoTower

STAGES = ("candidate", "production", "archived")
BUNDLE_FILES = ("config.json", "model.pt", "item_vectors.npy", "item_embeddings.npy", "item_ids.npy",
                "index.faiss", "features.json")


class RegistryError(RuntimeError):
    """A registry operation cannot run; the message names the fix."""


def _store(path: Path):
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")  # no usage analytics leave the machine
    from bentoml._internal.models.model import ModelStore

    path.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(path))


def register(files_dir: Path, *, store_path: Path, name: str, version: str,
             metadata: dict[str, Any], stage: str = "candidate") -> str:
    """Copy the bundle files from `files_dir` into a new store entry `name:version`; returns the tag.

    Re-registering the same version (a rerun of the same data interval) replaces it."""
    import bentoml

    missing = [f for f in BUNDLE_FILES if not (files_dir / f).exists()]
    if missing:
        raise RegistryError(f"bundle incomplete in {files_dir}: missing {', '.join(missing)}; "
                            "run the train and build_index steps first; the registry was not changed")
    store = _store(store_path)
    tag = f"{name}:{version}"
    try:
        store.delete(tag)
    except Exception:  # not there yet
        pass
    with bentoml.models.create(name=tag, labels={"stage": stage, "run_id": version},
                               metadata=metadata, _model_store=store) as m:
        for f in BUNDLE_FILES:
            shutil.copy2(files_dir / f, Path(m.path) / f)
    return tag


def _set_stage(model: Any, stage: str) -> None:
    from bentoml._internal.models.model import ModelInfo

    info = model.info
    labels = {**info.labels, "stage": stage}
    model._info = ModelInfo(tag=info.tag, module=info.module, labels=labels, options=info.options,
                            metadata=info.metadata, context=info.context, signatures=info.signatures,
                            api_version=info.api_version, creation_time=info.creation_time)
    model._write_info()  # model.yaml in the store entry is the source of truth for the stage


def list_models(store_path: Path, name: str) -> list[Any]:
    store = _store(store_path)
    try:
        return sorted(store.list(name), key=lambda m: m.info.creation_time)
    except Exception:
        return []


def get_stage(store_path: Path, name: str, stage: str = "production") -> Any | None:
    """The newest model of `name` labelled `stage`, or None."""
    found = [m for m in list_models(store_path, name) if m.info.labels.get("stage") == stage]
    return found[-1] if found else None


def promote(store_path: Path, tag: str) -> str:
    """Make `tag` the production model; the previous production model becomes archived."""
    store = _store(store_path)
    try:
        model = store.get(tag)
    except Exception as exc:
        raise RegistryError(f"no model {tag} in {store_path}; list them with "
                            "`python -m minirec.pipeline models`") from exc
    name = model.tag.name
    for m in list_models(store_path, name):
        if m.info.labels.get("stage") == "production" and str(m.tag) != str(model.tag):
            _set_stage(m, "archived")
    _set_stage(model, "production")
    return str(model.tag)


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


def load_dir(path: Path) -> tuple[TwoTower, dict[str, Any]]:
    """Model (both towers) from a folder holding config.json and model.pt."""
    import torch

    from minirec.model.two_tower import TwoTower, TwoTowerConfig

    if not (path / "config.json").exists() or not (path / "model.pt").exists():
        raise RegistryError(f"model directory {path} does not exist or lacks config.json/model.pt; "
                            "run `make train` first")
    cfg = TwoTowerConfig.from_dict(json.loads((path / "config.json").read_text()))
    model = TwoTower(cfg)
    model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    return model, cfg.to_dict()


def load_bundle(store_path: Path, name: str = "two_tower", tag: str | None = None,
                stage: str | None = "production") -> Bundle:
    """Load a bundle by tag, or the newest one in `stage`."""
    import faiss

    store = _store(store_path)
    if tag is not None:
        model_entry = store.get(tag)
    else:
        model_entry = get_stage(store_path, name, stage or "production")
        if model_entry is None:
            raise RegistryError(f"no {name} model in stage {stage} under {store_path}; run `make train`")
    path = Path(model_entry.path)
    model, _ = load_dir(path)
    return Bundle(
        tag=str(model_entry.tag), model=model,
        item_vectors=np.load(path / "item_vectors.npy"), item_embeddings=np.load(path / "item_embeddings.npy"),
        item_ids=np.load(path / "item_ids.npy"), index=faiss.read_index(str(path / "index.faiss")),
        features=json.loads((path / "features.json").read_text()), metadata=dict(model_entry.info.metadata),
    )
