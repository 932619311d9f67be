"""The online-store curve at 200 users on real redis-servers: Feast's keys and fields, the packed
record, equal values through both readers, and the memory accounting of `run_size`."""

from __future__ import annotations

import uuid

import pytest

from minirec.scale.online import KEYS, USER_VIEWS, feast_repo, run_size, synth_rows, write_feast
from minirec.scale.packed import PACKED, PackedReader, pack, packed_key, write_packed
from services.recommender.features import (
    OnlineFeatures,
    feast_entity_key,
    feast_field,
    layout_from_feast,
)

N = 200
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return synth_rows(N, tmp_path_factory.mktemp("rows"), seed=4)


@pytest.fixture(scope="module")
def world(rows, redis_server, tmp_path_factory):
    """Feast materialize and the packed SETs of the same rows, in one project of the session's Redis."""
    import redis

    project = f"t{uuid.uuid4().hex[:8]}"
    store = feast_repo(rows, tmp_path_factory.mktemp("repo"), redis_server.port, project=project)
    write_feast(store, rows, "materialize")
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    ids, rec, vocab = pack(rows)
    write_packed(client, project, ids, rec, vocab)
    yield store, client, project, ids
    client.close()


def test_feast_keys_hold_every_feature_field_and_a_timestamp_per_view(world):
    store, client, project, ids = world
    layout = layout_from_feast(store, "two_tower_v1")
    want = {feast_field(v, f) for v, f in layout.features} | {f"_ts:{v}".encode() for v in USER_VIEWS}
    assert len(want) == 11 + 3
    for u in ids[:20]:
        assert set(client.hkeys(feast_entity_key("user_id", int(u), project))) == want
        assert len(client.get(packed_key(project, int(u)))) == PACKED.itemsize == 192


def test_both_readers_return_the_source_rows_values(world, rows):
    """Same dict from the service's Feast-encoding reader and the packed reader, for every user,
    and equal to the offline rows (float32 values compared exactly: both store float32)."""
    store, client, project, ids = world
    feast = OnlineFeatures(client, layout_from_feast(store, "two_tower_v1"))
    got_feast, _ = feast.read(ids.tolist(), with_seen=False)
    got_packed = PackedReader(client, project).read(ids.tolist())
    assert got_feast == got_packed
    agg, rt = rows["user_aggregates"], rows["user_realtime"]
    for k in (0, N // 2, N - 1):
        assert got_packed[k]["last_items"] == list(rt["last_items"].iloc[k])
        assert got_packed[k]["u_genre_share_90d"] == [float(x) for x in agg["u_genre_share_90d"].iloc[k]]
        assert got_packed[k]["u_cnt_all"] == int(agg["u_cnt_all"].iloc[k]) > 0
    assert PackedReader(client, project).read([10**9]) == [None]  # an unknown user is cold, not an error


def test_write_to_online_store_stores_the_same_bytes_as_materialize(world, rows, redis_server, tmp_path):
    """The curve's largest size is written with write_to_online_store: same Feast encoding, byte for byte."""
    store, client, project, ids = world
    other = feast_repo(rows, tmp_path, redis_server.port, project=project + "w")
    write_feast(other, rows, "write_to_online_store", chunk=70)
    for u in ids[::17]:
        a = client.hgetall(feast_entity_key("user_id", int(u), project))
        b = client.hgetall(feast_entity_key("user_id", int(u), project + "w"))
        assert a == b and len(a) == 14


@pytest.mark.infra
def test_run_size_measures_both_encodings(tmp_path):
    """Packed < Feast is a measured fact, not an assumption: Feast's hash holds 14 fields (11 ValueProtos,
    3 view timestamps), and its 19-float genre share (~79 B) exceeds hash-max-listpack-value (64 B), so
    Redis keeps a hashtable with an entry per field; the packed record is one 192-byte string.
    Neither can be smaller than its payload, which checks the used_memory accounting."""
    def feast_reader(client, store):
        reader = OnlineFeatures(client, layout_from_feast(store, "two_tower_v1"))
        return lambda ids: reader.read(ids, with_seen=False)[0]

    out = run_size(N, tmp_path / "w", feast_reader, n_reads=60, seed=2)
    assert [r["encoding"] for r in out] == ["feast", "packed"]
    feast, packed = out
    for r in out:
        assert set(KEYS) <= set(r), set(KEYS) - set(r)
        assert r["users"] == N and r["redis_keys"] == 2 * N + 1  # a hash + a string per user, the vocabulary
        assert r["p99_us"] >= r["p50_us"] > 0 and r["p50_us_batch32"] > 0
    assert feast["write"] == "feast materialize"
    assert packed["bytes_per_user"] >= PACKED.itemsize
    assert feast["bytes_per_user"] > 14 * 8  # 14 fields, each well over 8 bytes of payload
    assert packed["bytes_per_user"] < feast["bytes_per_user"], (packed, feast)
    assert not (tmp_path / "w").exists()  # the per-size server and its files are gone
