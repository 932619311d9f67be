"""The training pipeline as plain functions, one per Airflow task.

    validate_data -> build_training_set -> train -> evaluate -> gate
        -> build_index -> register -> materialize -> export_reference

Every step reads and writes files in one run folder,
`artifacts/runs/<run_id>/`, where run_id is derived from the data interval
end, so a rerun of the same interval overwrites the same outputs
(idempotent). Nothing reaches the live Feast repo, Redis or the model
registry before the gate has passed. The same functions run without
Airflow:

    python -m minirec.pipeline run                   # whole pipeline (`make train`)
    python -m minirec.pipeline step train --run-id X # one step
    python -m minirec.pipeline promote two_tower:X   # stage a model as production
    python -m minirec.pipeline models                # list registry entries
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from minirec.settings import REPO_ROOT, get_settings
from minirec.train.trainer import TrainConfig

STEPS = ["validate_data", "build_training_set", "train", "evaluate", "gate", "build_index", "register",
         "materialize", "export_reference"]
MODEL_KEY = "two_tower"
POP_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # grid for w, chosen on validation
LATEST_FILES = ("metrics.json", "metrics_valid.json", "comparison.json", "results.md", "results.png",
                "training_curve.png", "ann.json", "train.json", "gate.json", "manifest.json")


class PipelineError(RuntimeError):
    """A step cannot run; the message says why and what to do."""


@dataclass
class RunContext:
    run_id: str
    data_dir: Path  # lake folder with users/items/interactions.parquet
    artifacts_dir: Path
    feature_repo: Path  # the live Feast repo (materialised into Redis)
    model_store: Path
    feast_project: str
    redis_host: str
    redis_port: int
    model_name: str = "two_tower"
    window_end: str | None = None  # ISO time; interactions at or after it are ignored
    gate_tolerance: float = 0.005
    valid_frac: float = 0.1
    test_frac: float = 0.1
    auto_promote: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def run_dir(self) -> Path:
        return self.artifacts_dir / "runs" / self.run_id

    @property
    def latest_dir(self) -> Path:
        return self.artifacts_dir / "latest"

    @property
    def run_repo(self) -> Path:
        """A private copy of the Feast repo for this run (offline tables + registry)."""
        return self.run_dir / "feature_repo"

    @classmethod
    def from_settings(cls, run_id: str | None = None, window_end: str | None = None, **overrides: Any) -> RunContext:
        s = get_settings()
        if run_id is None:
            run_id = "full" if window_end is None else pd.Timestamp(window_end).strftime("%Y%m%dT%H%M%S")
        ctx = cls(run_id=run_id, data_dir=s.data_path / "ml-100k", artifacts_dir=s.artifacts_path,
                  feature_repo=s.feature_repo_path, model_store=s.model_store_path,
                  feast_project=s.feast_project, redis_host=s.redis_host, redis_port=s.redis_port,
                  model_name=s.model_name, window_end=window_end, gate_tolerance=s.gate_tolerance)
        train_over = overrides.pop("train", None)
        ctx = replace(ctx, **overrides)
        if train_over:
            ctx.train = replace(ctx.train, **train_over) if isinstance(train_over, dict) else train_over
        return ctx

    def store(self, repo: Path | None = None):
        from minirec.features.store import open_store

        return open_store(repo or self.run_repo, project=self.feast_project,
                          redis_host=self.redis_host, redis_port=self.redis_port)


# ---------------------------------------------------------------- helpers
def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise PipelineError(f"{path} is missing: run the earlier pipeline steps first "
                            "(`python -m minirec.pipeline run`)")
    return json.loads(path.read_text())


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown"


def _load_run_tables(ctx: RunContext) -> dict[str, pd.DataFrame]:
    from minirec.data.movielens import load

    tables = load(ctx.data_dir)
    path = ctx.run_dir / "interactions.parquet"
    if not path.exists():
        raise PipelineError(f"{path} is missing: run validate_data first")
    tables["interactions"] = pd.read_parquet(path)
    return tables


def _split(ctx: RunContext, tables: dict[str, pd.DataFrame]):
    from minirec.train.split import temporal_split

    return temporal_split(tables["interactions"], ctx.valid_frac, ctx.test_frac)


def _catalogue(tables: dict[str, pd.DataFrame]):
    from minirec.train.evaluate import Catalogue

    return Catalogue.from_tables(tables["items"], tables["users"], tables["interactions"])


# ---------------------------------------------------------------- 1. validate_data
def validate_data(ctx: RunContext) -> dict[str, Any]:
    """Check the lake tables and cut the data window; writes run_dir/interactions.parquet."""
    from minirec.data.movielens import DataError, load

    try:
        tables = load(ctx.data_dir)
    except DataError:
        raise
    except Exception as exc:  # unreadable parquet
        raise DataError(f"the lake under {ctx.data_dir} is unreadable ({type(exc).__name__}: {exc}); "
                        "re-fetch it with `make data`") from exc
    inter, items = tables["interactions"], tables["items"]
    need = {"interactions": ["user_id", "item_id", "rating", "event_timestamp"],
            "items": ["item_id", "genres", "year"], "users": ["user_id", "age", "gender", "occupation"]}
    for name, cols in need.items():
        missing = [c for c in cols if c not in tables[name].columns]
        if missing:
            raise DataError(f"{name} table lacks columns {missing}; the lake is corrupt, run `make data`")
    problems = []
    if inter[["user_id", "item_id", "event_timestamp"]].isna().any().any():
        problems.append("null keys or timestamps in interactions")
    if len(inter) and not inter["rating"].between(1, 5).all():
        problems.append("ratings outside 1..5")
    unknown_items = set(inter["item_id"].unique()) - set(items["item_id"].unique())
    if unknown_items:
        problems.append(f"{len(unknown_items)} interacted item ids missing from the items table")
    if problems:
        raise DataError("corrupt lake: " + "; ".join(problems) + "; re-fetch with `make data`")
    window = inter
    if ctx.window_end is not None:
        window = inter[inter["event_timestamp"] < pd.Timestamp(ctx.window_end)]
    if len(window) == 0:
        raise DataError(f"the training window is empty: no interaction before {ctx.window_end} "
                        f"(the lake spans {inter['event_timestamp'].min()} .. {inter['event_timestamp'].max()})")
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    window.to_parquet(ctx.run_dir / "interactions.parquet", index=False)
    out = {"run_id": ctx.run_id, "interactions": int(len(window)), "users": int(window["user_id"].nunique()),
           "items": int(window["item_id"].nunique()), "start": window["event_timestamp"].min(),
           "end": window["event_timestamp"].max(), "window_end": ctx.window_end}
    _write_json(ctx.run_dir / "validate.json", out)
    return out


# ---------------------------------------------------------------- 2. build_training_set
def build_training_set(ctx: RunContext) -> dict[str, Any]:
    """Feature tables -> private Feast repo -> point-in-time training and evaluation frames."""
    from minirec.features.store import apply_repo, copy_repo
    from minirec.features.tables import build_feature_tables, write_feature_tables
    from minirec.features.training_set import items_at, label_frame, users_at

    tables = _load_run_tables(ctx)
    split = _split(ctx, tables)
    cat = _catalogue(tables)
    copy_repo(ctx.run_repo, ctx.feature_repo)
    rows = write_feature_tables(build_feature_tables(tables), ctx.run_repo / "data")
    store = ctx.store()
    apply_repo(store, ctx.run_repo)
    t0 = time.perf_counter()
    frames = {
        "train_labels": label_frame(store, split.train),
        "users_valid": users_at(store, cat.user_ids, split.cut_valid),
        "users_test": users_at(store, cat.user_ids, split.cut_test),
        "items_valid": items_at(store, cat.item_ids, split.cut_valid),
        "items_test": items_at(store, cat.item_ids, split.cut_test),
        "users_end": users_at(store, cat.user_ids, split.end + pd.Timedelta(seconds=1)),
        "items_end": items_at(store, cat.item_ids, split.end + pd.Timedelta(seconds=1)),
    }
    out_dir = ctx.run_dir / "frames"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if len(frame) == 0:
            raise PipelineError(f"frame {name} has no rows: the feature store returned nothing")
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    out = {"feature_rows": rows, "frames": {k: len(v) for k, v in frames.items()},
           "join_seconds": round(time.perf_counter() - t0, 2), "window": split.window(),
           "split_sizes": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}}
    _write_json(ctx.run_dir / "training_set.json", out)
    return out


def _frames(ctx: RunContext, *names: str) -> list[pd.DataFrame]:
    paths = [ctx.run_dir / "frames" / f"{n}.parquet" for n in names]
    for p in paths:
        if not p.exists():
            raise PipelineError(f"{p} is missing: run build_training_set first")
    return [pd.read_parquet(p) for p in paths]


# ---------------------------------------------------------------- 3. train
def _tower_scores(model, users: pd.DataFrame, items: pd.DataFrame, user_ids: np.ndarray,
                  item_ids: np.ndarray, pop_weight: float | None = None) -> np.ndarray:
    """(U_e, M) retrieval scores for `user_ids` from feature frames (rows in catalogue order)."""
    from minirec.model.two_tower import item_vectors, user_vectors

    rows = users.set_index("user_id").loc[user_ids].reset_index()
    q = user_vectors(model, rows, user_ids)  # (U_e, d+1)
    if pop_weight is not None:
        q[:, -1] = pop_weight
    return q @ item_vectors(model, items, item_ids).T


def _eval_sets(split, cat):
    from minirec.train.evaluate import make_eval_set

    valid = make_eval_set(split.train, split.valid, split.cut_valid, cat)
    test = make_eval_set(pd.concat([split.train, split.valid]), split.test, split.cut_test, cat)
    return valid, test


def _best_pop_weight(model, users, items, ev, cat) -> tuple[float, float]:
    """Grid-search w on one evaluation set; returns (w, ndcg@10)."""
    from minirec.model.two_tower import item_vectors, user_vectors
    from minirec.train.evaluate import evaluate_scores

    rows = users.set_index("user_id").loc[ev.user_ids].reset_index()
    q = user_vectors(model, rows, ev.user_ids)
    iv = item_vectors(model, items, cat.item_ids)
    best = (0.0, -1.0)
    for w in POP_WEIGHTS:
        q[:, -1] = w
        ndcg = evaluate_scores(q @ iv.T, ev, cat.n_items, ks=(10,))[0]["ndcg@10"]
        if ndcg > best[1]:
            best = (w, ndcg)
    return best


def train(ctx: RunContext) -> dict[str, Any]:
    """Train the two-tower on the train period; early stopping and w on validation."""
    import torch

    from minirec.model.two_tower import TwoTower, TwoTowerConfig, encode_items, encode_users
    from minirec.train.trainer import plot_history, train_two_tower

    tables = _load_run_tables(ctx)
    split, cat = _split(ctx, tables), _catalogue(tables)
    labels, users_valid, items_valid = _frames(ctx, "train_labels", "users_valid", "items_valid")
    valid_ev, _ = _eval_sets(split, cat)
    cfg = TwoTowerConfig(user_ids=sorted(int(u) for u in labels["user_id"].unique()),
                         item_ids=[int(i) for i in cat.item_ids],
                         occupations=sorted(str(o) for o in tables["users"]["occupation"].unique()))
    torch.manual_seed(ctx.train.seed)
    model = TwoTower(cfg)
    users_x = encode_users(labels, cfg, labels["user_id"].values)
    targets = torch.as_tensor(cat.item_index(labels["item_id"].values), dtype=torch.long)
    items_x = encode_items(items_valid, cfg, cat.item_ids)
    freq = np.bincount(targets.numpy(), minlength=cat.n_items).astype(np.float64)

    def validate(m: TwoTower) -> float:
        return _best_pop_weight(m, users_valid, items_valid, valid_ev, cat)[1]

    result = train_two_tower(model, users_x, targets, items_x, freq, validate, ctx.train)
    w, ndcg = _best_pop_weight(model, users_valid, items_valid, valid_ev, cat)
    model.cfg.pop_weight = w
    out_dir = ctx.run_dir / "model"
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / "model.pt")
    _write_json(out_dir / "config.json", cfg.to_dict())
    plot_history(result.history, ctx.run_dir / "training_curve.png")
    out = {"seconds": round(result.seconds, 1), "best_epoch": result.best_epoch, "epochs_run": len(result.history),
           "valid_ndcg@10": ndcg, "pop_weight": w, "history": result.history, "train_config": result.config,
           "labels": int(len(labels))}
    _write_json(ctx.run_dir / "train.json", out)
    return out


# ---------------------------------------------------------------- 4. evaluate
def _baselines(split_hist: pd.DataFrame, cat, cut: pd.Timestamp, params: dict[str, Any]) -> dict[str, Any]:
    from minirec.train import baselines as B

    return {
        "most_popular": B.fit_most_popular(split_hist, cat),
        "recent_popular": B.fit_recent_popular(split_hist, cat, cut, days=params["recent_days"]),
        "item_knn": B.fit_item_knn(split_hist, cat, neighbours=params["knn_neighbours"]),
        "als_mf": B.fit_als_mf(split_hist, cat, alpha=params["als_alpha"]),
    }


def _tune_baselines(split, cat, valid_ev) -> tuple[dict[str, Any], dict[str, Any]]:
    """Baseline hyperparameters chosen on validation NDCG@10 (never on test).

    Returns (params, the fitted validation scorers of the chosen settings)."""
    from minirec.train import baselines as B
    from minirec.train.evaluate import evaluate_scores

    def best(grid, fit):
        fitted = {g: fit(g) for g in grid}
        scores = {g: evaluate_scores(f(valid_ev.user_ids), valid_ev, cat.n_items, ks=(10,))[0]["ndcg@10"]
                  for g, f in fitted.items()}
        g = max(grid, key=lambda x: scores[x])
        return g, fitted[g]

    days, recent = best((7, 14, 30), lambda d: B.fit_recent_popular(split.train, cat, split.cut_valid, d))
    neigh, knn = best((50, 200, cat.n_items), lambda k: B.fit_item_knn(split.train, cat, k))
    alpha, als = best((1.0, 10.0), lambda a: B.fit_als_mf(split.train, cat, alpha=a))
    params = {"recent_days": days, "knn_neighbours": int(neigh), "als_alpha": alpha}
    fitted = {"most_popular": B.fit_most_popular(split.train, cat), "recent_popular": recent,
              "item_knn": knn, "als_mf": als}
    return params, fitted


def evaluate(ctx: RunContext) -> dict[str, Any]:
    """Two-tower and baselines on validation and test; JSON, markdown table, plot, bootstrap CI."""
    from minirec.train.evaluate import evaluate_scores
    from minirec.train.metrics import paired_bootstrap
    from minirec.train.registry import load_dir

    tables = _load_run_tables(ctx)
    split, cat = _split(ctx, tables), _catalogue(tables)
    valid_ev, test_ev = _eval_sets(split, cat)
    users_valid, items_valid, users_test, items_test = _frames(
        ctx, "users_valid", "items_valid", "users_test", "items_test")
    model, _ = load_dir(ctx.run_dir / "model")
    params, valid_scorers = _tune_baselines(split, cat, valid_ev)
    results: dict[str, dict[str, dict[str, float]]] = {"valid": {}, "test": {}}
    per_user: dict[str, np.ndarray] = {}
    setups = {
        "valid": (valid_ev, split.train, split.cut_valid, users_valid, items_valid),
        "test": (test_ev, pd.concat([split.train, split.valid]), split.cut_test, users_test, items_test),
    }
    for part, (ev, hist, cut, users, items) in setups.items():
        scorers = valid_scorers if part == "valid" else _baselines(hist, cat, cut, params)
        scorers = {MODEL_KEY: lambda u, users=users, items=items:
                   _tower_scores(model, users, items, u, cat.item_ids), **scorers}
        for name, scorer in scorers.items():
            summary, pu, _ = evaluate_scores(scorer(ev.user_ids), ev, cat.n_items)
            results[part][name] = summary
            if part == "test":
                per_user[name] = pu["ndcg@10"]
    test = results["test"]
    best_test = max((k for k in test if k != MODEL_KEY), key=lambda k: test[k]["ndcg@10"])
    best_valid = max((k for k in results["valid"] if k != MODEL_KEY), key=lambda k: results["valid"][k]["ndcg@10"])
    comparison = {
        "metric": "ndcg@10", "split": "test",
        "best_baseline_test": best_test,
        "bootstrap_vs_best_test": paired_bootstrap(per_user[MODEL_KEY], per_user[best_test]),
        "best_baseline_valid": best_valid,
        "bootstrap_vs_best_valid": paired_bootstrap(per_user[MODEL_KEY], per_user[best_valid]),
        "baseline_params": params, "test_users": int(len(test_ev.user_ids)),
        "valid_users": int(len(valid_ev.user_ids)), "window": split.window(),
    }
    _write_json(ctx.run_dir / "metrics.json", test)
    _write_json(ctx.run_dir / "metrics_valid.json", results["valid"])
    _write_json(ctx.run_dir / "comparison.json", comparison)
    pd.DataFrame(per_user, index=test_ev.user_ids).rename_axis("user_id").to_parquet(
        ctx.run_dir / "per_user_ndcg10_test.parquet")
    (ctx.run_dir / "results.md").write_text(results_markdown(results, comparison))
    plot_results(test, ctx.run_dir / "results.png")
    return {"test": test, "valid": results["valid"], "comparison": comparison}


def results_markdown(results: dict[str, dict[str, dict[str, float]]], comparison: dict[str, Any]) -> str:
    lines = []
    for part in ("test", "valid"):
        lines += [f"### {part} split ({results[part][MODEL_KEY]['users']} users, full-catalogue ranking, "
                  "seen items masked)", "",
                  "| model | " + " | ".join(f"{m}@{k}" for k in (10, 50, 100) for m in ("NDCG", "Recall", "Hit", "MRR"))
                  + " | Cov@10 |",
                  "|---|" + "---|" * 13]
        for name, m in sorted(results[part].items(), key=lambda kv: -kv[1]["ndcg@10"]):
            cells = [f"{m[f'{x}@{k}']:.4f}" for k in (10, 50, 100) for x in ("ndcg", "recall", "hit", "mrr")]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {m['coverage@10']:.3f} |")
        lines.append("")
    b = comparison["bootstrap_vs_best_test"]
    lines.append(f"Paired bootstrap (test users, {b['n_boot']} resamples) of NDCG@10 two_tower − "
                 f"{comparison['best_baseline_test']} (best baseline on test): mean {b['mean']:+.4f}, "
                 f"95 % CI [{b['low']:+.4f}, {b['high']:+.4f}] over {b['users']} users.")
    bv = comparison["bootstrap_vs_best_valid"]
    lines.append(f"Against {comparison['best_baseline_valid']} (best baseline on validation): mean "
                 f"{bv['mean']:+.4f}, 95 % CI [{bv['low']:+.4f}, {bv['high']:+.4f}].")
    lines.append(f"Baseline hyperparameters (chosen on validation): {comparison['baseline_params']}.")
    return "\n".join(lines) + "\n"


def plot_results(test: dict[str, dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(test, key=lambda k: -test[k]["ndcg@10"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("ndcg", "recall"), strict=True):
        x = np.arange(len(names))
        for j, k in enumerate((10, 50, 100)):
            ax.bar(x + (j - 1) * 0.27, [test[n][f"{metric}@{k}"] for n in names], width=0.27, label=f"@{k}")
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(f"test {metric.upper()}@K")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- 5. gate
def gate(ctx: RunContext) -> dict[str, Any]:
    """Fail (GateError) unless the candidate beats the best baseline and is not worse than production."""
    from minirec.train.gate import GateError, decide
    from minirec.train.registry import get_stage

    valid = _read_json(ctx.run_dir / "metrics_valid.json")
    prod = get_stage(ctx.model_store, ctx.model_name, "production")
    prod_value = None
    if prod is not None and str(prod.tag.version) != ctx.run_id:
        prod_value = float(prod.info.metadata.get("valid_ndcg@10", float("nan")))
    decision = decide(valid, MODEL_KEY, prod_value, ctx.gate_tolerance)
    _write_json(ctx.run_dir / "gate.json", decision.to_dict())
    if not decision.passed:
        raise GateError(decision.message)
    return decision.to_dict()


# ---------------------------------------------------------------- 6. build_index
def build_index(ctx: RunContext) -> dict[str, Any]:
    """Item vectors as of the window end -> FAISS HNSW; recall and latency against exact search."""
    import faiss

    from minirec.features.store import ITEM_SERVICE, USER_SERVICE
    from minirec.model.two_tower import ITEM_FEATURES, USER_FEATURES, item_vectors, user_vectors
    from minirec.train.ann import build_exact, build_hnsw, measure
    from minirec.train.registry import load_dir

    _read_json(ctx.run_dir / "gate.json")
    tables = _load_run_tables(ctx)
    cat = _catalogue(tables)
    model, cfg = load_dir(ctx.run_dir / "model")
    users_end, items_end = _frames(ctx, "users_end", "items_end")
    iv = item_vectors(model, items_end, cat.item_ids)  # (M, d+1)
    queries = user_vectors(model, users_end, users_end["user_id"].values)  # (U, d+1)
    ann, exact = build_hnsw(iv), build_exact(iv)
    stats = measure(ann, exact, queries, k=100)
    bundle = ctx.run_dir / "bundle"
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    shutil.copy2(ctx.run_dir / "model" / "model.pt", bundle / "model.pt")
    _write_json(bundle / "config.json", cfg)
    np.save(bundle / "item_vectors.npy", iv)
    np.save(bundle / "item_embeddings.npy", np.ascontiguousarray(iv[:, :-1]))
    np.save(bundle / "item_ids.npy", cat.item_ids.astype(np.int64))
    faiss.write_index(ann, str(bundle / "index.faiss"))
    _write_json(bundle / "features.json", {"user_service": USER_SERVICE, "item_service": ITEM_SERVICE,
                                           "user_features": USER_FEATURES, "item_features": ITEM_FEATURES})
    _write_json(ctx.run_dir / "ann.json", stats)
    return stats


# ---------------------------------------------------------------- 7. register
def register(ctx: RunContext) -> dict[str, Any]:
    """Save the bundle in the BentoML model store as `candidate`; promote when auto_promote."""
    from minirec.features.store import USER_SERVICE
    from minirec.train.registry import promote
    from minirec.train.registry import register as reg

    gate_info = _read_json(ctx.run_dir / "gate.json")
    if not gate_info.get("passed"):
        raise PipelineError("the gate did not pass for this run; refusing to register")
    valid = _read_json(ctx.run_dir / "metrics_valid.json")
    meta = {
        "run_id": ctx.run_id, "metrics_test": _read_json(ctx.run_dir / "metrics.json"),
        "metrics_valid": valid, "valid_ndcg@10": valid[MODEL_KEY]["ndcg@10"],
        "data_window": _read_json(ctx.run_dir / "training_set.json")["window"],
        "feature_service": USER_SERVICE, "git_commit": _git_commit(),
        "ann": _read_json(ctx.run_dir / "ann.json"), "train_seconds": _read_json(ctx.run_dir / "train.json")["seconds"],
    }
    tag = reg(ctx.run_dir / "bundle", store_path=ctx.model_store, name=ctx.model_name, version=ctx.run_id,
              metadata=meta)
    stage = "candidate"
    if ctx.auto_promote:
        promote(ctx.model_store, tag)
        stage = "production"
    out = {"tag": tag, "stage": stage, "store": str(ctx.model_store)}
    _write_json(ctx.run_dir / "register.json", out)
    return out


# ---------------------------------------------------------------- 8. materialize
def materialize(ctx: RunContext) -> dict[str, Any]:
    """Publish the run's feature tables to the live Feast repo, apply, materialise into Redis."""
    import redis

    from minirec.features.store import FeatureStoreError, apply_repo, check_sources
    from minirec.features.store import materialize as mat

    rows = check_sources(ctx.run_repo)  # fails before anything live changes
    try:
        redis.Redis(host=ctx.redis_host, port=ctx.redis_port, socket_timeout=5).ping()
    except Exception as exc:
        raise FeatureStoreError(f"Redis did not answer on {ctx.redis_host}:{ctx.redis_port} ({exc}); "
                                "run `make up` or set REDIS_HOST/REDIS_PORT; the online store is unchanged") from exc
    live = ctx.feature_repo / "data"
    live.mkdir(parents=True, exist_ok=True)
    for src in sorted((ctx.run_repo / "data").glob("*.parquet")):
        tmp = live / f".{src.name}.tmp"
        shutil.copy2(src, tmp)
        tmp.replace(live / src.name)
    store = ctx.store(ctx.feature_repo)
    apply_repo(store, ctx.feature_repo)
    end = pd.Timestamp(_read_json(ctx.run_dir / "training_set.json")["window"]["end"]) + pd.Timedelta(days=1)
    t0 = time.perf_counter()
    mat(store, end=end.to_pydatetime())
    out = {"rows": rows, "end": end.isoformat(), "seconds": round(time.perf_counter() - t0, 1),
           "redis": f"{ctx.redis_host}:{ctx.redis_port}", "project": ctx.feast_project}
    _write_json(ctx.run_dir / "materialize.json", out)
    return out


# ---------------------------------------------------------------- 9. export_reference
def export_reference(ctx: RunContext) -> dict[str, Any]:
    """Reference distributions for the drift monitor, then publish to artifacts/latest."""
    from minirec.model.two_tower import COUNT_FEATURES, item_vectors, user_vectors
    from minirec.train.registry import load_dir

    model, _ = load_dir(ctx.run_dir / "model")
    labels, users_end, items_end = _frames(ctx, "train_labels", "users_end", "items_end")
    ref = ctx.run_dir / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    sample = labels.sample(n=min(20_000, len(labels)), random_state=0)
    feats = sample[["user_id", "item_id", "label_timestamp", "age_bucket", "gender", "occupation",
                    *COUNT_FEATURES, "u_mean_rating_30d"]].copy()
    feats["n_last_items"] = sample["last_items"].map(lambda v: 0 if v is None else len(v)).values
    feats.to_parquet(ref / "features.parquet", index=False)
    tables = _load_run_tables(ctx)
    cat = _catalogue(tables)
    q = user_vectors(model, users_end, users_end["user_id"].values)
    s = q @ item_vectors(model, items_end, cat.item_ids).T  # (U, M)
    top = np.sort(s, axis=1)[:, ::-1][:, :10]
    pd.DataFrame({"user_id": users_end["user_id"].values, "top1_score": top[:, 0],
                  "top10_mean_score": top.mean(axis=1)}).to_parquet(ref / "scores.parquet", index=False)
    manifest = {"run_id": ctx.run_id, "git_commit": _git_commit(), "steps": STEPS,
                "window": _read_json(ctx.run_dir / "training_set.json")["window"],
                "register": _read_json(ctx.run_dir / "register.json") if (ctx.run_dir / "register.json").exists() else None}
    _write_json(ctx.run_dir / "manifest.json", manifest)
    publish_latest(ctx)
    return {"reference": str(ref), "features_rows": int(len(feats)), "score_rows": int(len(top))}


def publish_latest(ctx: RunContext) -> Path:
    """Copy the run's results to artifacts/latest (replaced as a whole)."""
    tmp = ctx.artifacts_dir / ".latest.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in LATEST_FILES:
        if (ctx.run_dir / name).exists():
            shutil.copy2(ctx.run_dir / name, tmp / name)
    if (ctx.run_dir / "reference").exists():
        shutil.copytree(ctx.run_dir / "reference", tmp / "reference")
    (tmp / "RUN_ID").write_text(ctx.run_id + "\n")
    if ctx.latest_dir.exists():
        shutil.rmtree(ctx.latest_dir)
    tmp.rename(ctx.latest_dir)
    return ctx.latest_dir


# ---------------------------------------------------------------- runner and CLI
def run_step(name: str, ctx: RunContext) -> dict[str, Any]:
    if name not in STEPS:
        raise PipelineError(f"unknown step {name}; steps are {', '.join(STEPS)}")
    t0 = time.perf_counter()
    out = globals()[name](ctx)
    print(f"[{name}] done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return out


def run(ctx: RunContext, steps: list[str] | None = None) -> dict[str, Any]:
    """Run steps in order (all by default); stops at the first failure."""
    return {name: run_step(name, ctx) for name in (steps or STEPS)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minirec.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("run", "step"):
        sp = sub.add_parser(cmd)
        if cmd == "step":
            sp.add_argument("name", choices=STEPS)
        sp.add_argument("--run-id")
        sp.add_argument("--window-end", help="ISO time; ignore interactions at or after it")
        sp.add_argument("--epochs", type=int)
        sp.add_argument("--seed", type=int)
        sp.add_argument("--no-promote", action="store_true", help="register as candidate only")
        sp.add_argument("--skip", nargs="*", default=[], choices=STEPS, help="steps to skip (run only)")
    pp = sub.add_parser("promote")
    pp.add_argument("tag")
    sub.add_parser("models")
    a = p.parse_args(argv)
    s = get_settings()
    if a.cmd == "promote":
        from minirec.train.registry import promote

        print(promote(s.model_store_path, a.tag))
        return 0
    if a.cmd == "models":
        from minirec.train.registry import list_models

        for m in list_models(s.model_store_path, s.model_name):
            print(m.tag, m.info.labels.get("stage"), m.info.metadata.get("valid_ndcg@10"))
        return 0
    train_over = {k: v for k, v in {"epochs": a.epochs, "seed": a.seed}.items() if v is not None}
    ctx = RunContext.from_settings(run_id=a.run_id, window_end=a.window_end, train=train_over,
                                   auto_promote=not a.no_promote)
    if a.cmd == "step":
        run_step(a.name, ctx)
    else:
        run(ctx, [s_ for s_ in STEPS if s_ not in a.skip])
    print(json.dumps({"run_dir": str(ctx.run_dir), "latest": str(ctx.latest_dir)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
