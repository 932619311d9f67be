"""`python -m minirec.pipeline.seeds`: a seed's run, and --towers-from (w chosen again on a run's
unchanged towers), which must give what a fresh run with that rule gives."""

from __future__ import annotations

import json

import pytest

from minirec.pipeline import seeds


@pytest.fixture(scope="module")
def over(tmp_path_factory, synthetic_lake):
    from minirec.features.store import copy_repo

    root = tmp_path_factory.mktemp("seeds")
    return dict(data_dir=synthetic_lake, artifacts_dir=root / "artifacts", feature_repo=copy_repo(root / "repo"),
                model_store=root / "bentoml", feast_project="tseeds", redis_host="127.0.0.1", redis_port=1)


TRAIN = {"epochs": 2, "ensemble": 2}


def test_towers_from_reproduces_a_fresh_run_with_the_other_rule(over):
    smooth = seeds.run_seed(4, "sm", train=TRAIN | {"pop_weight_rule": "smooth"}, **over)
    bagged = seeds.run_seed(4, "bg", train=TRAIN | {"pop_weight_rule": "bagged"}, **over)
    again = seeds.rechoose_seed(4, "re", "sm", "bagged", **over)
    runs = over["artifacts_dir"] / "runs"
    tr = {p: json.loads((runs / f"{p}-s4" / "train.json").read_text()) for p in ("sm", "bg", "re")}
    assert tr["sm"]["pop_weight"] != tr["bg"]["pop_weight"]  # the rules disagree on this seed (6.0 vs 4.75)
    assert tr["re"]["pop_weight"] == tr["bg"]["pop_weight"] == tr["sm"]["pop_weight_choice"]["by_rule"]["bagged"]
    assert tr["re"]["pop_weight_choice"]["rechosen_from"] == "sm-s4"
    for key in ("two_tower", "retrieval_only", "learned_only", "vs_best", "recall@100"):
        assert again[key] == bagged[key], key
    assert again["learned_only"] == smooth["learned_only"]  # the towers are the smooth run's
    table = seeds.table([smooth, bagged, again])
    assert table.count("\n") == 5 and "| 4 |" in table  # header, rule, three rows


def test_towers_from_refuses_the_options_it_would_ignore(capsys):
    with pytest.raises(SystemExit) as exc:
        seeds.main(["--seeds", "1", "--towers-from", "old", "--ensemble", "5"])
    assert exc.value.code == 2
    assert "--ensemble, --pop-weight and --from-run do not apply" in capsys.readouterr().err
