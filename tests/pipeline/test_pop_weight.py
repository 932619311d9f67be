"""How the train step sets the popularity weight w: the smoothed validation argmax, or a fixed grid value."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from minirec import pipeline as P
from minirec.pipeline.pop_weight import POP_WEIGHTS, smooth
from tests.pipeline.conftest import offline_ctx


def test_smoothing_prefers_a_broad_peak_to_a_lone_spike():
    curve = np.full(len(POP_WEIGHTS), 0.30)
    curve[3:7] = [0.36, 0.37, 0.37, 0.36]  # broad peak around w = 1.0-1.25
    curve[-1] = 0.375  # one higher point at w = 6, its neighbour low
    assert np.argmax(curve) == len(POP_WEIGHTS) - 1  # the raw argmax takes the spike
    assert POP_WEIGHTS[int(np.argmax(smooth(curve)))] in (1.0, 1.25)


@pytest.fixture(scope="module")
def frames_ctx(tmp_path_factory, synthetic_lake):
    ctx = offline_ctx(tmp_path_factory.mktemp("popw"), synthetic_lake, "pw", "tpw")
    P.run(ctx, ["validate_data", "build_training_set"])
    return ctx


def test_a_fixed_w_is_served_as_given(frames_ctx):
    ctx = dataclasses.replace(frames_ctx, train=dataclasses.replace(frames_ctx.train, pop_weight=4.5))
    out = P.run_step("train", ctx)
    assert out["pop_weight"] == 4.5
    for folder in ("model", "model_holdout"):  # the served towers and the holdout ones carry it
        assert json.loads((ctx.run_dir / folder / "config.json").read_text())["pop_weight"] == 4.5


def test_a_w_off_the_grid_is_refused_naming_the_grid(frames_ctx):
    ctx = dataclasses.replace(frames_ctx, train=dataclasses.replace(frames_ctx.train, pop_weight=1.3))
    with pytest.raises(P.PipelineError, match=r"pop_weight = 1.3 is not on the grid"):
        P.run_step("train", ctx)
