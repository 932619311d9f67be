"""The global temporal split: no time overlap, no test interaction in train."""

import pandas as pd
import pytest

from minirec.data.movielens import load
from minirec.data.synthetic import SyntheticConfig, generate
from minirec.train.split import SplitError, temporal_split


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn")
    generate(SyntheticConfig(n_users=300, n_items=200, mean_interactions=15, days=60, seed=3), out)
    return load(out)["interactions"]


def test_split_is_disjoint_in_time_and_covers_everything(synthetic):
    s = temporal_split(synthetic)
    assert s.train["event_timestamp"].max() < s.cut_valid <= s.valid["event_timestamp"].min()
    assert s.valid["event_timestamp"].max() < s.cut_test <= s.test["event_timestamp"].min()
    assert len(s.train) + len(s.valid) + len(s.test) == len(synthetic)
    assert len(s.test) / len(synthetic) == pytest.approx(0.1, abs=0.01)
    key = ["user_id", "item_id", "event_timestamp"]
    train_keys = set(map(tuple, s.train[key].astype(str).values))
    assert not train_keys & set(map(tuple, s.test[key].astype(str).values))
    assert not train_keys & set(map(tuple, s.valid[key].astype(str).values))


def test_events_sharing_the_cut_timestamp_stay_together():
    ts = pd.to_datetime(["2024-01-01"] * 5 + ["2024-01-02"] * 5, utc=True)
    df = pd.DataFrame({"user_id": range(10), "item_id": range(10), "rating": 3.0, "event_timestamp": ts})
    with pytest.raises(SplitError, match="empty"):
        temporal_split(df, 0.1, 0.1)  # the 80 % cut falls inside the second timestamp's block


def test_empty_window_is_refused():
    with pytest.raises(SplitError, match="training window is empty"):
        temporal_split(pd.DataFrame({"user_id": [], "item_id": [], "event_timestamp": pd.to_datetime([], utc=True)}))
