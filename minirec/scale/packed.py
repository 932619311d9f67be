"""A packed online representation of the `two_tower_v1` user row: one Redis string per user.

The alternative the online-store curve measures against Feast's encoding (one Redis hash per
user, one field per feature holding a serialised ValueProto, plus a `_ts:<view>` field per
view). Here the whole row is one fixed-size little-endian record (numpy structured dtype):

    ts i8 | age_bucket u1 gender u1 occupation u1 n_last u1 | 5 counts u4 | mean rating f4
    | genre shares 19 x f4 | last items 20 x i4            = PACKED.itemsize bytes (192)

key = "<project>:pu:<user_id>". Strings (gender, occupation) are codes into a vocabulary
stored once under "<project>:pu:vocab" (JSON). Values round-trip exactly: f4 holds the same
float32 Feast stores, item ids fit i4 (< 2^31). What it gives up: the schema lives in code
(a new feature = a new record version and a rewrite), no per-view timestamps (one `ts`, the
newest of the row's views), and Feast's registry cannot read it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from minirec.features.tables import GENRES, LAST_N

COUNTS = ("u_cnt_7d", "u_cnt_30d", "u_cnt_all", "u_cnt_1h", "u_cnt_24h")
PACKED = np.dtype([("ts", "<i8"), ("age_bucket", "u1"), ("gender", "u1"), ("occupation", "u1"), ("n_last", "u1"),
                   *[(c, "<u4") for c in COUNTS], ("u_mean_rating_30d", "<f4"),
                   ("u_genre_share_90d", "<f4", (len(GENRES),)), ("last_items", "<i4", (LAST_N,))])


def packed_key(project: str, user_id: int) -> bytes:
    return f"{project}:pu:{int(user_id)}".encode()


def vocab_key(project: str) -> bytes:
    return f"{project}:pu:vocab".encode()


def pack(rows: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, dict[str, list[str]]]:
    """The three user views (one row per user, same user order) -> (user ids (U,), records (U,) PACKED,
    vocabularies {gender, occupation})."""
    prof, agg, rt = rows["user_profile"], rows["user_aggregates"], rows["user_realtime"]
    ids = prof["user_id"].to_numpy(np.int64)
    for frame in (agg, rt):
        if not np.array_equal(frame["user_id"].to_numpy(np.int64), ids):
            raise ValueError("pack: the views must hold the same users in the same order")
    rec = np.zeros(len(ids), dtype=PACKED)
    vocab = {}
    for col in ("gender", "occupation"):
        codes, uniques = pd.factorize(prof[col].astype(str), sort=True)
        if len(uniques) > 255:
            raise ValueError(f"pack: {len(uniques)} distinct {col} values do not fit one byte")
        rec[col], vocab[col] = codes, list(uniques)
    rec["age_bucket"] = prof["age_bucket"].to_numpy()
    stamps = [pd.DatetimeIndex(f["event_timestamp"]).as_unit("us").asi8 for f in (prof, agg, rt)]  # us
    rec["ts"] = np.maximum.reduce(stamps)
    for c in COUNTS:
        rec[c] = (agg if c in agg else rt)[c].to_numpy()
    rec["u_mean_rating_30d"] = agg["u_mean_rating_30d"].to_numpy(np.float32)
    rec["u_genre_share_90d"] = np.stack(agg["u_genre_share_90d"].to_numpy())
    lengths = np.fromiter((len(x) for x in rt["last_items"]), dtype=np.int64, count=len(rt))
    rec["n_last"] = lengths
    hist = np.zeros((len(ids), LAST_N), dtype=np.int32)
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in rt["last_items"]]) if lengths.sum() else []
    hist[np.arange(LAST_N)[None, :] < lengths[:, None]] = flat  # row-major fill of each user's prefix
    rec["last_items"] = hist
    return ids, rec, vocab


def write_packed(client: Any, project: str, ids: np.ndarray, rec: np.ndarray, vocab: dict[str, list[str]],
                 chunk: int = 10_000, progress=lambda n: None) -> None:
    """SET one record per user (pipelined in chunks) and the vocabulary key."""
    raw = rec.tobytes()
    size = PACKED.itemsize
    client.set(vocab_key(project), json.dumps(vocab))
    for lo in range(0, len(ids), chunk):
        pipe = client.pipeline(transaction=False)
        for i in range(lo, min(lo + chunk, len(ids))):
            pipe.set(packed_key(project, ids[i]), raw[i * size:(i + 1) * size])
        pipe.execute()
        progress(min(chunk, len(ids) - lo))


def unpack(raw: bytes, vocab: dict[str, list[str]]) -> dict[str, Any]:
    """One record -> the feature dict the Feast reader returns (same names, Python types, values)."""
    r = np.frombuffer(raw, dtype=PACKED, count=1)[0]
    out: dict[str, Any] = {"age_bucket": int(r["age_bucket"]), "gender": vocab["gender"][r["gender"]],
                           "occupation": vocab["occupation"][r["occupation"]]}
    out.update({c: int(r[c]) for c in COUNTS})
    out["u_mean_rating_30d"] = float(r["u_mean_rating_30d"])
    out["u_genre_share_90d"] = r["u_genre_share_90d"].tolist()
    out["last_items"] = r["last_items"][:r["n_last"]].tolist()
    return out


class PackedReader:
    """Reads packed rows: one MGET per batch (one round trip, as the Feast-encoding reader)."""

    def __init__(self, client: Any, project: str):
        self.client, self.project = client, project
        raw = client.get(vocab_key(project))
        if raw is None:
            raise KeyError(f"no packed vocabulary under {vocab_key(project)!r}; write the packed rows first")
        self.vocab = json.loads(raw)
        self._conn: Any = None  # one connection of the client's pool, used by this reader only

    def read(self, user_ids: Sequence[int]) -> list[dict[str, Any] | None]:
        return [None if r is None else unpack(r, self.vocab) for r in self._mget(user_ids)]

    def _mget(self, user_ids: Sequence[int]) -> list[bytes | None]:
        """MGET on one connection kept from the pool, packed and read directly: the same transport as
        the service's Feast-encoding reader (services/recommender/features.py, `_round_trip`), so the
        curve compares encodings, not redis-py's per-call overhead (~25 µs of a ~70 µs read there)."""
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
        try:
            self._conn.send_command("MGET", *[packed_key(self.project, u) for u in user_ids])
            return self._conn.read_response()
        except BaseException:
            self._conn.disconnect()
            raise
