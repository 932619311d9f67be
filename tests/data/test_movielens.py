"""MovieLens-100K as fetched from the recbole wheel: shape, integrity, failure modes."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from minirec.data import movielens
from minirec.data.movielens import DataError, fetch_movielens, load
from minirec.settings import get_settings


@pytest.fixture(scope="module")
def ml_folder(movielens) -> Path:
    return movielens


@pytest.fixture(scope="module")
def tables(ml_folder):
    return load(ml_folder)


def test_row_counts(tables):
    assert len(tables["users"]) == 943
    assert len(tables["items"]) == 1682
    assert len(tables["interactions"]) == 100_000


def test_ids_unique_and_referenced(tables):
    users, items, inter = tables["users"], tables["items"], tables["interactions"]
    assert users.user_id.is_unique and items.item_id.is_unique
    assert inter.user_id.isin(users.user_id).all()
    assert inter.item_id.isin(items.item_id).all()


def test_timestamps_span_sep_1997_to_apr_1998(tables):
    ts = tables["interactions"].event_timestamp
    assert str(ts.dt.tz) == "UTC"
    assert ts.min().strftime("%Y-%m") == "1997-09"
    assert ts.max().strftime("%Y-%m") == "1998-04"


def test_genres_are_lists(tables):
    items = tables["items"].set_index("item_id")
    assert list(items.loc[1, "genres"]) == ["Animation", "Children's", "Comedy"]
    assert items.loc[1, "title"] == "Toy Story" and items.loc[1, "year"] == 1995
    assert all(isinstance(list(g), list) for g in items.genres)


def test_ratings_and_demographics(tables):
    assert set(tables["interactions"].rating.unique()) == {1, 2, 3, 4, 5}
    assert set(tables["users"].gender) == {"M", "F"}
    assert tables["users"].age.between(1, 100).all()


def test_fetch_is_idempotent(ml_folder):
    before = {p.name: p.stat().st_mtime_ns for p in ml_folder.iterdir()}
    again = fetch_movielens(ml_folder.parent)
    assert again == ml_folder
    assert {p.name: p.stat().st_mtime_ns for p in ml_folder.iterdir()} == before


def _wheel_with(tmp_path: Path, inter_bytes: bytes) -> Path:
    """A copy of the real wheel layout whose .inter file is replaced."""
    src = get_settings().data_path / "ml-100k"
    real = {k: None for k in movielens.SHA256}
    wheel = tmp_path / movielens.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as zf:
        for kind in real:
            name = f"{movielens.MEMBER_DIR}/{movielens.DATASET}.{kind}"
            zf.writestr(name, inter_bytes if kind == "inter" else b"x")
    assert src.exists()
    return wheel


def test_checksum_mismatch_leaves_nothing(tmp_path):
    wheel = _wheel_with(tmp_path, b"user_id:token\titem_id:token\n1\t2\n")
    root = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch for ml-100k.inter"):
        fetch_movielens(root, wheel=wheel)
    leftovers = [p for p in root.rglob("*")] if root.exists() else []
    assert leftovers == []


def test_not_a_wheel_is_a_clear_error(tmp_path):
    bad = tmp_path / movielens.WHEEL_NAME
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="not a usable recbole wheel"):
        fetch_movielens(tmp_path / "data", wheel=bad)
    assert not (tmp_path / "data" / "ml-100k").exists()


def test_failed_download_says_what_went_wrong(tmp_path, monkeypatch):
    # an unreachable index makes pip fail for real; nothing may be written
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(DataError, match="could not download recbole==1.2.1"):
        fetch_movielens(tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_load_missing_dataset_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="make data"):
        load(tmp_path / "nothing")


def test_parse_keeps_items_with_unknown_year(tables):
    items = tables["items"]
    unknown = items[items.year.isna()]
    assert 0 < len(unknown) < 5  # MovieLens has a couple of 'unknown' release years
    assert pd.api.types.is_integer_dtype(items.year.dtype)


def test_copy_of_folder_is_not_complete_without_manifest(tmp_path, ml_folder):
    dst = tmp_path / "ml-100k"
    shutil.copytree(ml_folder, dst)
    (dst / "manifest.json").unlink()
    assert not movielens.is_complete(dst)
