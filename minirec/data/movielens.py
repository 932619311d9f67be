"""MovieLens-100K from the `recbole` wheel on PyPI, as canonical parquet.

The wheel ships `recbole/dataset_example/ml-100k/ml-100k.{inter,user,item}`
(tab separated, typed headers such as `user_id:token`). We download it with
`pip download --no-deps`, check each file's sha256, parse, and write the three
tables into a temporary folder that is renamed into place only when all of
them are complete: a failure leaves no partial output.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from minirec.data.schema import INTERACTIONS, ITEMS, USERS, table_paths

RECBOLE_VERSION = "1.2.1"
WHEEL_NAME = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
MEMBER_DIR = "recbole/dataset_example/ml-100k"
# sha256 of the raw files inside recbole 1.2.1 (checked on every fetch)
SHA256 = {
    "inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
DATASET = "ml-100k"


class DataError(RuntimeError):
    """Fetching or converting the dataset failed; the message says why and what to do."""


def download_wheel(dest: Path) -> Path:
    """`pip download --no-deps recbole==1.2.1` into `dest`; returns the wheel path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           f"recbole=={RECBOLE_VERSION}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / WHEEL_NAME
    if proc.returncode != 0 or not wheel.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DataError(
            f"could not download recbole=={RECBOLE_VERSION} from PyPI "
            f"({' | '.join(tail) or 'no output'}); check network access to PyPI and retry `make data`"
        )
    return wheel


def read_members(wheel: Path) -> dict[str, bytes]:
    """Raw bytes of the three files, sha256-verified."""
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for kind in SHA256:
                out[kind] = zf.read(f"{MEMBER_DIR}/{DATASET}.{kind}")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{wheel.name} is not a usable recbole wheel ({exc}); delete it and retry") from exc
    for kind, blob in out.items():
        digest = hashlib.sha256(blob).hexdigest()
        if digest != SHA256[kind]:
            raise DataError(
                f"checksum mismatch for {DATASET}.{kind}: expected {SHA256[kind]}, got {digest}; "
                "the download is corrupt or not recbole 1.2.1, nothing was written"
            )
    return out


def _read_atomic(blob: bytes) -> pd.DataFrame:
    # Headers look like `user_id:token`; keep the name, drop the type.
    df = pd.read_csv(io.BytesIO(blob), sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def parse(raw: dict[str, bytes]) -> dict[str, pa.Table]:
    """Raw recbole files -> canonical arrow tables (schemas in minirec.data.schema)."""
    inter = _read_atomic(raw["inter"])
    users = _read_atomic(raw["user"])
    items = _read_atomic(raw["item"])

    interactions = pd.DataFrame(
        {
            "user_id": inter["user_id"].astype("int64"),
            "item_id": inter["item_id"].astype("int64"),
            "rating": inter["rating"].astype("float32"),
            "event_timestamp": pd.to_datetime(inter["timestamp"].astype("float").astype("int64"), unit="s", utc=True),
        }
    ).sort_values(["event_timestamp", "user_id", "item_id"], kind="stable")
    users_df = pd.DataFrame(
        {
            "user_id": users["user_id"].astype("int64"),
            "age": users["age"].astype("int16"),
            "gender": users["gender"],
            "occupation": users["occupation"],
            "zip_code": users["zip_code"],
        }
    ).sort_values("user_id")
    year = pd.to_numeric(items["release_year"], errors="coerce").astype("Int16")
    items_df = pd.DataFrame(
        {
            "item_id": items["item_id"].astype("int64"),
            "title": items["movie_title"],
            "year": year,
            "genres": [g.split() if g else [] for g in items["class"]],
        }
    ).sort_values("item_id")
    return {
        "users": pa.Table.from_pandas(users_df, schema=USERS, preserve_index=False),
        "items": pa.Table.from_pandas(items_df, schema=ITEMS, preserve_index=False),
        "interactions": pa.Table.from_pandas(interactions, schema=INTERACTIONS, preserve_index=False),
    }


def dataset_dir(data_root: Path) -> Path:
    return data_root / DATASET


def is_complete(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return False
    meta = json.loads(manifest.read_text())
    return meta.get("sha256") == SHA256 and all(p.exists() for p in table_paths(folder).values())


def fetch_movielens(data_root: Path, wheel: Path | None = None, force: bool = False) -> Path:
    """Make `data_root/ml-100k/{users,items,interactions}.parquet`; idempotent.

    `wheel` lets tests feed a local (possibly corrupt) wheel instead of PyPI.
    Returns the dataset folder.
    """
    target = dataset_dir(data_root)
    if is_complete(target) and not force:
        return target
    data_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_root, prefix=".fetch-") as tmp:
        tmp_path = Path(tmp)
        wheel_path = wheel if wheel is not None else download_wheel(tmp_path / "wheel")
        tables = parse(read_members(wheel_path))
        staging = tmp_path / DATASET
        staging.mkdir()
        for name, path in table_paths(staging).items():
            pq.write_table(tables[name], path)
        (staging / "manifest.json").write_text(
            json.dumps(
                {"source": f"recbole=={RECBOLE_VERSION}", "sha256": SHA256,
                 "rows": {k: t.num_rows for k, t in tables.items()}},
                indent=2,
            )
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # same filesystem: atomic
    return target


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """Read the canonical tables back as DataFrames."""
    missing = [str(p) for p in table_paths(folder).values() if not p.exists()]
    if missing:
        raise DataError(f"dataset not found: {', '.join(missing)}; run `make data`")
    return {name: pd.read_parquet(path) for name, path in table_paths(folder).items()}
