"""CTR by served model: the production two-tower against a popularity list, on the same simulated sessions.

Needs the stack's Redis with `make train`'s release (online features and seen-sets as of the held-out
period's start) and its production model; it changes neither (the models go into a private store).

  1. a private model store: production = the stack's production two-tower bundle; candidate = the
     same bundle turned into a popularity ranker (item embeddings zeroed, popularity weight 1, exact
     index): score = log1p(i_pop_decayed) at the release cut, the model's own popularity term alone,
     served through the same path (same features, same seen-set exclusion, same k);
  2. a private recommender on a free port over that store: `control` = two-tower, `treatment` = popularity;
  3. services/simulator/paired.py: each held-out session asks both arms and clicks both lists with the
     same generator (common random numbers); no event is sent (the lake stays clean);
  4. CTR +- SE per arm and the paired difference -> artifacts/bench/ctr_by_model.{json,md}.

    .venv/bin/python loadtests/ctr_by_model.py [--sessions 3000] [--seed 0] [--noise 0.02]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make the repo's packages importable

from minirec.settings import get_settings  # noqa: E402


def popularity_bundle(src: Path, dest: Path) -> Path:
    """A copy of the two-tower bundle `src` that ranks by the popularity column alone."""
    import faiss

    from minirec.train.ann import build_exact

    shutil.copytree(src, dest)
    iv = np.load(dest / "item_vectors.npy")  # (M, d+1) [v, log1p(popularity)]
    iv[:, :-1] = 0.0  # no user-item affinity: every user's score is w * log1p(popularity)
    np.save(dest / "item_vectors.npy", iv)
    faiss.write_index(build_exact(iv), str(dest / "index.faiss"))
    cfg = json.loads((dest / "config.json").read_text())
    cfg["pop_weight"] = 1.0  # any w > 0 gives the same order
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def private_store(work: Path) -> tuple[Path, str, str]:
    """(store, production tag, candidate tag): the stack's production model and its popularity twin."""
    from minirec.train.registry import get_stage, promote, register

    s = get_settings()
    prod = get_stage(s.model_store_path, s.model_name, "production")
    if prod is None:
        raise SystemExit(f"no production model in {s.model_store_path}: run `make train` first")
    store = work / "store"
    tt = register(prod.path, store_path=store, name=s.model_name, version=prod.version,
                  metadata={"source": prod.tag}, by="ctr_by_model", reason="two-tower arm")
    promote(store, tt, by="ctr_by_model", reason="control arm")
    pop = register(popularity_bundle(prod.path, work / "popularity"), store_path=store, name=s.model_name,
                   version=f"{prod.version}-popularity", metadata={"source": prod.tag, "ranker": "popularity"},
                   by="ctr_by_model", reason="popularity arm")
    return store, tt, pop


def start_recommender(work: Path, store: Path):
    import httpx

    from minirec.infra.process import Server, free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(REPO), "BENTOML_HOME": str(work / "bentoml_home"),
           "MODEL_STORE_DIR": str(store), "RECOMMENDER_PORT": str(port),
           "TOPIC_IMPRESSIONS": f"ctr-by-model-{int(time.time())}"}  # never the stack's impressions topic
    srv = Server(name="recommender", argv=[sys.executable, "-m", "services.recommender"], host="127.0.0.1",
                 ports=[port], state_dir=work, env=env, cwd=REPO, start_timeout_s=240,
                 health=lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
                 hint=f"see {work}/recommender.log")
    srv.start()
    return srv, url


def markdown(out: dict) -> str:
    a, b = out["arms"]
    rows = [f"| {arm} ({out['labels'][arm]}) | {out[arm]['ctr']:.4f} | {out[arm]['se']:.4f} "
            f"| {out[arm]['expected_ctr']:.4f} | {out[arm]['expected_se']:.4f} | {out[arm]['clicks']:,} "
            f"| {out[arm]['shown']:,} |" for arm in (a, b)]
    d, e = out["difference"], out["expected_difference"]
    return "\n".join([
        f"CTR by served model on the same {out['sessions']:,} held-out sessions (paired, common random numbers; "
        f"click model max_attract {out['click_model']['max_attract']}, noise {out['click_model']['noise']}, "
        f"k {out['k']}, seed {out['seed']}):", "",
        "| arm | CTR (sampled clicks) | SE | expected CTR (click model, no dice) | SE | clicks | shown |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Difference {out['labels'][a]} - {out['labels'][b]}: sampled {d['ctr']:+.4f} (SE {d['se']:.4f}, "
        f"z = {d['z']:.1f}), expected {e['ctr']:+.4f} (SE {e['se']:.4f}, z = {e['z']:.1f}), binary relevance "
        f"{out['binary_difference']['ctr']:+.4f} (SE {out['binary_difference']['se']:.4f}, z = "
        f"{out['binary_difference']['z']:.1f}; per arm {out[a]['binary']:.4f} vs {out[b]['binary']:.4f}); "
        f"identical lists in {out['identical_lists']:,} sessions; errors {out['errors'] or 'none'}.",
        f"Command: `{out['command']}`", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=3000, help="held-out sessions (first N in time order)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--noise", type=float, default=0.02)
    p.add_argument("--max-attract", type=float, default=0.9)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--out", type=Path, default=None, help="default ARTIFACTS_DIR/bench/ctr_by_model.json")
    a = p.parse_args(argv)
    from services.simulator.clicks import ClickModel
    from services.simulator.client import Recommender
    from services.simulator.paired import play_paired, summarize
    from services.simulator.simulate import build_plan

    s = get_settings()
    work = Path(tempfile.mkdtemp(prefix="ctr_by_model_"))
    srv = None
    try:
        store, tt, pop = private_store(work)
        srv, url = start_recommender(work, store)
        _, plan = build_plan(s.data_path / "ml-100k", max_sessions=a.sessions, seed=a.seed)
        rec = Recommender(url, timeout_s=30)
        t0 = time.perf_counter()
        run = play_paired(plan, rec, ClickModel(max_attract=a.max_attract, noise=a.noise), k=a.k, seed=a.seed,
                          concurrency=a.concurrency)
        rec.close()
        out = {"arms": ["control", "treatment"], "labels": {"control": "two_tower", "treatment": "popularity"},
               "tags": {"control": tt, "treatment": pop}, "k": a.k, "seed": a.seed,
               "click_model": {"max_attract": a.max_attract, "noise": a.noise},
               "wall_s": round(time.perf_counter() - t0, 1), "command": "python " + " ".join(
                   ["loadtests/ctr_by_model.py", *(argv if argv is not None else sys.argv[1:])]).strip(),
               **summarize(run)}
    finally:
        if srv is not None:
            srv.stop(timeout_s=20)
    path = a.out or s.artifacts_path / "bench" / "ctr_by_model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    path.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
