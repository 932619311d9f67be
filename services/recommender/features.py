"""Online user features: Feast defines them, one raw Redis round trip reads them.

Feast's `get_online_features` took 5.0x this module's reader for one user
(404 vs 81 µs) in the latest `make bench-features` (`artifacts/bench/features.json`).
So the service reads the definition from the Feast registry once at startup
(feature service -> views -> feature names and types) and then reads the
rows itself with exactly the keys and fields Feast writes
(feast/infra/online_stores/redis.py):

    key   = serialize_entity_key(user_id, v3) + project            (binary)
    field = murmur3_32("<view>:<feature>") little-endian (4 bytes),
            plus "_ts:<view>" per view
    value = a serialised feast ValueProto

Every user of a batch is one HMGET in one pipeline (one round trip), and the
same pipeline fetches the user's seen-set (`seen_key`). A user without any
row is "cold" (Feast would return all None). `tests/serving/test_features.py`
proves parity with `get_online_features`.

Blast radius: a reply that cannot be read for one user (a value that is not a
ValueProto, a key of the wrong Redis type) marks that user's row as `BadRow`
(or their seen-set as None) and leaves the other users of the batch alone;
only a connection failure or timeout raises, for the whole batch.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mmh3

from minirec.features.seen import backfill_seen, seen_key

VALUE_TYPE_INT64 = 4  # feast ValueType.INT64
VALUE_TYPE_STRING = 2  # feast ValueType.STRING (join key names are tagged with it)


def feast_field(view: str, feature: str) -> bytes:
    """Feast's Redis hash field for one feature (murmur3_32, little-endian, 4 bytes)."""
    return struct.pack("<Q", mmh3.hash(f"{view}:{feature}", signed=False))[:4]


def feast_entity_key(join_key: str, value: int, project: str) -> bytes:
    """Feast's Redis key for a single int64 join key, entity_key_serialization_version 3."""
    k = join_key.encode()
    return (struct.pack("<I", 1) + struct.pack("<I", VALUE_TYPE_STRING) + struct.pack("<I", len(k)) + k
            + struct.pack("<I", VALUE_TYPE_INT64) + struct.pack("<I", 8) + struct.pack("<q", value)
            + project.encode())


@lru_cache(maxsize=1)
def _value_class():
    from feast.protos.feast.types.Value_pb2 import Value

    return Value


_SCALARS: dict[bytes, Any] = {}  # serialised scalar ValueProto -> its (immutable) value
_SCALARS_MAX = 65_536  # entries: a few MB at most; scalars repeat (buckets, counts, categories)
_MISS = object()


def decode_value(raw: bytes | None) -> Any:
    """A serialised feast ValueProto -> a Python value (lists for *_list_val), None when absent.

    Scalar values repeat across users and requests (an age bucket, a small count, an occupation),
    so their decoded value is cached by the raw bytes: a dict lookup instead of a protobuf parse
    (~1 µs each, 11 per user). Lists (history, genre shares) are parsed every time and returned
    as fresh lists, so a caller may change them."""
    if not raw:
        return None
    hit = _SCALARS.get(raw, _MISS)
    if hit is not _MISS:
        return hit
    v = _value_class()()
    v.ParseFromString(raw)
    kind = v.WhichOneof("val")
    if kind is None or kind == "null_val":
        out = None
    else:
        out = getattr(v, kind)
        if kind.endswith("_list_val"):
            return list(out.val)
    if len(_SCALARS) < _SCALARS_MAX:
        _SCALARS[raw] = out
    return out


@dataclass(frozen=True)
class FeatureLayout:
    """What to read for one feature service: (view, feature) pairs in order."""

    service: str
    project: str
    join_key: str
    features: list[tuple[str, str]]  # (view, feature)

    @property
    def names(self) -> list[str]:
        return [f for _, f in self.features]

    @property
    def views(self) -> list[str]:
        return list(dict.fromkeys(v for v, _ in self.features))

    @property
    def fields(self) -> list[bytes]:
        return [feast_field(v, f) for v, f in self.features]


def layout_from_feast(store: Any, service: str) -> FeatureLayout:
    """Read the feature service definition from a Feast FeatureStore's registry."""
    fs = store.get_feature_service(service)
    feats: list[tuple[str, str]] = []
    join_keys = set()
    for proj in fs.feature_view_projections:
        fv = store.get_feature_view(proj.name)
        join_keys.update(fv.projection.join_key_map.get(c.name, c.name) for c in fv.entity_columns)
        feats += [(proj.name, f.name) for f in proj.features]
    if len(join_keys) != 1:
        raise ValueError(f"feature service {service}: expected one join key, got {sorted(join_keys)}")
    return FeatureLayout(service=service, project=store.config.project, join_key=join_keys.pop(), features=feats)


def open_layout(repo: Path, service: str, project: str, redis_host: str, redis_port: int) -> FeatureLayout:
    from minirec.features.store import open_store

    store = open_store(repo, project=project, redis_host=redis_host, redis_port=redis_port)
    return layout_from_feast(store, service)


@dataclass(frozen=True)
class BadRow:
    """One user's online row that could not be decoded (the reason names the field or reply)."""

    reason: str


def _decode_row(names: list[str], values: list[bytes | None]) -> dict[str, Any] | BadRow:
    row = {}
    for name, v in zip(names, values, strict=True):
        try:
            row[name] = decode_value(v)
        except Exception as exc:  # protobuf DecodeError and the like: this user only
            return BadRow(f"{name}: not a Feast value ({type(exc).__name__})")
    return row


class OnlineFeatures:
    """Raw reader of Feast's Redis online store for one feature service."""

    def __init__(self, client: Any, layout: FeatureLayout):
        self.client = client  # redis.Redis
        self.layout = layout
        self._fields = layout.fields
        self._lock = threading.Lock()  # guards the reader's own connection (_round_trip)
        self._conn: Any = None

    def read(self, user_ids: Sequence[int], with_seen: bool = True
             ) -> tuple[list[dict[str, Any] | BadRow | None], list[set[int] | None]]:
        """One round trip for all users: feature dicts (None = cold user, BadRow = unreadable) and
        seen-sets (None = unreadable). Raises redis ConnectionError / TimeoutError on an outage."""
        lay = self.layout
        commands = []
        for u in user_ids:
            commands.append(("HMGET", feast_entity_key(lay.join_key, int(u), lay.project), *self._fields))
            if with_seen:
                commands.append(("SMEMBERS", seen_key(lay.project, int(u))))
        replies = self._round_trip(commands)
        step = 2 if with_seen else 1
        rows: list[dict[str, Any] | BadRow | None] = []
        seen: list[set[int] | None] = []
        for i in range(len(user_ids)):
            values = replies[i * step]
            if isinstance(values, Exception):  # e.g. WRONGTYPE: the key is not a hash
                rows.append(BadRow(f"feature hash unreadable: {values}"))
            elif all(v is None for v in values):
                rows.append(None)
            else:
                rows.append(_decode_row(lay.names, values))
            seen.append(_members(replies[i * step + 1]) if with_seen else set())
        return rows, seen

    def _round_trip(self, commands: list[tuple]) -> list[Any]:
        """Send every command at once and read the replies in order; an error reply (WRONGTYPE,
        say) comes back in its slot. What redis-py's `Pipeline.execute` does (`_execute_pipeline`),
        without its per-call objects, response callbacks and the pool's per-checkout health poll:
        for one user those cost ~25 µs of a ~70 µs read (loadtests/bench_features.py). The reader
        keeps one connection of the client's pool for itself, used under a lock (one request
        thread per worker here). A connection error or timeout drops the connection (the next
        call reconnects) and raises, as a pipeline does."""
        from redis.exceptions import ResponseError

        with self._lock:
            conn = self._conn
            if conn is None:
                conn = self._conn = self.client.connection_pool.get_connection()
            try:
                conn.send_packed_command(conn.pack_commands(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                return replies
            except BaseException:
                conn.disconnect()  # a half-read reply must never be read as the next call's answer
                raise


def _members(reply: Any) -> set[int] | None:
    """A seen-set reply -> item ids; None when it cannot be read (an error, a non-integer member)."""
    if isinstance(reply, Exception):
        return None
    try:
        return {int(x) for x in reply}
    except (TypeError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    """`python -m services.recommender.features backfill`: seen-sets from the lake into Redis."""
    import argparse

    import pandas as pd
    import redis

    from minirec.settings import get_settings

    s = get_settings()
    p = argparse.ArgumentParser(prog="python -m services.recommender.features")
    p.add_argument("cmd", choices=["backfill"])
    p.add_argument("--interactions", type=Path, default=s.data_path / "ml-100k" / "interactions.parquet")
    a = p.parse_args(argv)
    inter = pd.read_parquet(a.interactions, columns=["user_id", "item_id"])
    client = redis.Redis(host=s.redis_host, port=s.redis_port)
    n = backfill_seen(client, s.feast_project, inter)
    client.close()
    print(f"seen-sets written for {n} users ({len(inter)} interactions) into {s.redis_host}:{s.redis_port}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
