"""The served model's targets over several seeds (`make quality-seeds`): the pipeline's first steps
(validate_data .. evaluate, no service needed) once per seed, then one table.

    python -m minirec.pipeline.seeds --seeds 0 1 2 [--prefix seeds] [--from-run RUN] [--ensemble N]
        [--pop-weight W | --pop-weight-rule smooth|bagged]                                   # runs <prefix>-s<seed>
    python -m minirec.pipeline.seeds --seeds 3 4 --prefix P --towers-from OLD [--pop-weight-rule R]
        # runs OLD-s<seed> with w chosen again on their towers, then the ranker and evaluation
        -> artifacts/seeds/<prefix>.json and a markdown table on stdout

Per seed: NDCG@10 of two_tower (retrieval + ranker, as served) / retrieval_only / learned_only / recent_popular,
all, warm and cold; the paired-bootstrap 95 % interval of two_tower − the best baseline; Recall@100 of
two_tower and retrieval_only (equal by construction: the ranker reorders the top 100 only);
coverage@10 and novelty@10; the seconds of each step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

STEPS = ("validate_data", "build_training_set", "train", "train_ranker", "evaluate")
TARGET = 0.40  # issue 16: the served model's NDCG@10 on the test split


SHARED = ("interactions.parquet", "validate.json", "training_set.json", "frames")  # seed-independent outputs


def run_seed(seed: int, prefix: str, from_run: str | None = None,
             train: dict[str, Any] | None = None, **ctx_over: Any) -> dict[str, Any]:
    """One seed's steps; `train` overrides TrainConfig fields (e.g. {"ensemble": 1}), `ctx_over`
    RunContext fields (the tests point artifacts and data elsewhere)."""
    import shutil

    from minirec.pipeline.context import RunContext, read_json
    from minirec.pipeline.steps import run_step

    over = {"seed": seed, "progress": False} | (train or {})
    ctx = RunContext.from_settings(run_id=f"{prefix}-s{seed}", train=over, **ctx_over)
    steps = STEPS
    if from_run:  # the data steps do not depend on the seed: reuse their outputs
        src = ctx.artifacts_dir / "runs" / from_run
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        for name in SHARED:
            (shutil.copytree if (src / name).is_dir() else shutil.copy2)(src / name, ctx.run_dir / name)
        steps = STEPS[2:]
    seconds = {}
    for step in steps:
        t0 = time.perf_counter()
        run_step(step, ctx)
        seconds[step] = round(time.perf_counter() - t0, 1)
    m, c = read_json(ctx.run_dir / "metrics.json"), read_json(ctx.run_dir / "comparison.json")
    return summary(seed, ctx.run_id, m, c, seconds)


def rechoose_seed(seed: int, prefix: str, towers_from: str, rule: str, **ctx_over: Any) -> dict[str, Any]:
    """Seed `seed` of run prefix `towers_from`, its towers unchanged, with w chosen again by `rule`
    (minirec.pipeline.pop_weight) and the ranker and evaluation run again, as run <prefix>-s<seed>.

    Equal to training afresh: the towers do not depend on w and training is deterministic per seed
    (w only sets the query's last entry; checked in minirec/pipeline/README.md, section 8)."""
    import shutil

    from minirec.pipeline.context import (
        HOLDOUT,
        RunContext,
        catalogue,
        eval_sets,
        frames,
        load_run_tables,
        read_json,
        split_of,
        write_json,
    )
    from minirec.pipeline.pop_weight import POP_WEIGHTS, choose, validation_curve
    from minirec.pipeline.steps import run_step
    from minirec.train.registry import load_dir

    ctx = RunContext.from_settings(run_id=f"{prefix}-s{seed}", train={"seed": seed, "progress": False}, **ctx_over)
    src = ctx.artifacts_dir / "runs" / f"{towers_from}-s{seed}"
    if ctx.run_dir.exists():
        shutil.rmtree(ctx.run_dir)
    shutil.copytree(src, ctx.run_dir)
    tables = load_run_tables(ctx)
    split, cat = split_of(ctx, tables), catalogue(tables)
    users, items = frames(ctx, "users_valid", "items_valid")
    per_user = validation_curve(load_dir(ctx.run_dir / HOLDOUT)[0], users, items, eval_sets(split, cat)[0], cat)
    k, by_rule = choose(per_user, rule)
    for folder in (HOLDOUT, "model"):  # w is the query's last entry: the one field to change
        cfg = read_json(ctx.run_dir / folder / "config.json")
        write_json(ctx.run_dir / folder / "config.json", cfg | {"pop_weight": POP_WEIGHTS[k]})
    tr = read_json(ctx.run_dir / "train.json")
    write_json(ctx.run_dir / "train.json", tr | {"pop_weight": POP_WEIGHTS[k], "valid_ndcg@10": float(per_user[:, k].mean()),
                                                 "pop_weight_choice": {"rule": rule, "by_rule": by_rule,
                                                                       "rechosen_from": src.name}})
    seconds = {"train": 0.0}
    for step in STEPS[3:]:
        t0 = time.perf_counter()
        run_step(step, ctx)
        seconds[step] = round(time.perf_counter() - t0, 1)
    m, c = read_json(ctx.run_dir / "metrics.json"), read_json(ctx.run_dir / "comparison.json")
    return summary(seed, ctx.run_id, m, c, seconds) | {"pop_weight": POP_WEIGHTS[k]}


def summary(seed: int, run_id: str, m: dict[str, Any], c: dict[str, Any], seconds: dict[str, float]) -> dict[str, Any]:
    """One seed's row from its metrics.json and comparison.json."""
    def trio(name: str) -> list[float]:
        return [round(m[name]["ndcg@10"], 4), round(m[name]["warm"]["ndcg@10"], 4), round(m[name]["cold"]["ndcg@10"], 4)]

    ci = c["bootstrap_vs_best_test"]
    return {"seed": seed, "run_id": run_id, "two_tower": trio("two_tower"), "retrieval_only": trio("retrieval_only"),
            "learned_only": trio("learned_only"),
            "recent_popular": trio("recent_popular"), "best_baseline": c["best_baseline_test"],
            "vs_best": [round(ci["mean"], 4), round(ci["low"], 4), round(ci["high"], 4)],
            "recall@100": [round(m["two_tower"]["recall@100"], 4), round(m["retrieval_only"]["recall@100"], 4)],
            "coverage@10": round(m["two_tower"]["coverage@10"], 4), "novelty@10": round(m["two_tower"]["novelty@10"], 3),
            "seconds": seconds}


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| seed | two_tower all / warm / cold | retrieval_only all / warm / cold | learned_only all / warm / cold"
            " | two_tower − best baseline, 95 % CI | Recall@100 served / retrieval | Cov@10 | Nov@10"
            " | train + train_ranker + evaluate s |\n|---|---|---|---|---|---|---|---|---|\n")
    fmt = lambda v: " / ".join(f"{x:.4f}" for x in v)  # noqa: E731
    return head + "".join(
        f"| {r['seed']} | {fmt(r['two_tower'])} | {fmt(r['retrieval_only'])} | {fmt(r['learned_only'])} | {r['vs_best'][0]:+.4f} "
        f"[{r['vs_best'][1]:+.4f}, {r['vs_best'][2]:+.4f}] ({r['best_baseline']}) | {fmt(r['recall@100'])} | "
        f"{r['coverage@10']:.3f} | {r['novelty@10']:.2f} | "
        f"{r['seconds']['train']:.0f} + {r['seconds']['train_ranker']:.0f} + {r['seconds']['evaluate']:.0f} |\n"
        for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--prefix", default="seeds", help="run ids are <prefix>-s<seed>")
    ap.add_argument("--from-run", help="reuse this run's validate_data/build_training_set outputs (same window)")
    ap.add_argument("--ensemble", type=int, default=None, metavar="N",
                    help="towers as an N-member ensemble (minirec.model.ensemble; default: TrainConfig.ensemble, 3)")
    ap.add_argument("--pop-weight", type=float, default=None, metavar="W",
                    help="fix w at this grid value (TrainConfig.pop_weight; default: chosen per run)")
    ap.add_argument("--pop-weight-rule", choices=("smooth", "bagged"), default=None,
                    help="how w is chosen on validation (minirec.pipeline.pop_weight; default: TrainConfig's)")
    ap.add_argument("--towers-from", metavar="PREFIX",
                    help="reuse runs <PREFIX>-s<seed> (towers unchanged): choose w again by --pop-weight-rule"
                         " (default: TrainConfig's), then rerun the ranker and evaluation")
    a = ap.parse_args(argv)
    if a.towers_from and (a.ensemble is not None or a.pop_weight is not None or a.from_run):
        ap.error("--towers-from keeps the towers and chooses w by --pop-weight-rule: "
                 "--ensemble, --pop-weight and --from-run do not apply")
    over = {k: v for k, v in (("ensemble", a.ensemble), ("pop_weight", a.pop_weight),
                              ("pop_weight_rule", a.pop_weight_rule)) if v is not None}
    from minirec.settings import get_settings

    rows = []
    for seed in a.seeds:
        print(f"[seeds] seed {seed} ...", file=sys.stderr)
        if a.towers_from:
            from minirec.train.trainer import TrainConfig

            rows.append(rechoose_seed(seed, a.prefix, a.towers_from, a.pop_weight_rule or TrainConfig.pop_weight_rule))
        else:
            rows.append(run_seed(seed, a.prefix, a.from_run, over))
    out = get_settings().artifacts_path / "seeds" / f"{a.prefix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(table(rows))
    ok = all(r["two_tower"][0] >= TARGET and r["vs_best"][1] > 0 for r in rows)
    print(f"served NDCG@10 >= {TARGET} with the interval above zero for every seed: {'yes' if ok else 'NO'}; {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
