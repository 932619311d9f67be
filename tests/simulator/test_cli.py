"""The CLI: a summary and exit 0 when services are down (errors counted, fix named); bad input refused."""

from __future__ import annotations

import json

import pytest

from services.simulator.__main__ import main


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from minirec.data.synthetic import SyntheticConfig, generate

    root = tmp_path_factory.mktemp("lake")
    generate(SyntheticConfig(n_users=80, n_items=40, mean_interactions=8, days=20, seed=1), root)
    return root


def test_unreachable_services_are_counted_and_summarised(lake, capsys):
    rc = main(["--data-dir", str(lake), "--recommender-url", "http://127.0.0.1:9", "--kafka-bootstrap",
               "127.0.0.1:9", "--speedup", "1e9", "--max-sessions", "5", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "sessions 5" in out and "'unreachable': 5" in out and "make serve" in out


def test_json_summary(lake, capsys):
    assert main(["--data-dir", str(lake), "--recommender-url", "http://127.0.0.1:9", "--dry-run", "--speedup",
                 "1e9", "--users", "3", "--json", "--no-progress"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["requests"] == 0 and m["errors"]["unreachable"] == m["sessions"] > 0


@pytest.mark.parametrize("args,match", [(["--k", "0"], "--k"), (["--speedup", "-1"], "speedup"),
                                        (["--noise", "2"], "noise"), (["--data-dir", "/nonexistent"], "make data")])
def test_bad_input_is_refused_with_the_reason(lake, capsys, args, match):
    base = ["--data-dir", str(lake), "--dry-run", "--no-progress"]
    assert main(base + args) == 2
    assert match in capsys.readouterr().err
