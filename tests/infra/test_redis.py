"""Redis round trip on the session's own redis-server."""

import redis


def test_round_trip(redis_server, redis_prefix):
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    assert client.ping()
    key = f"{redis_prefix}user:1"
    client.hset(key, mapping={"age": 24, "gender": "M"})
    assert client.hgetall(key) == {b"age": b"24", b"gender": b"M"}
    pipe = client.pipeline()
    for i in range(100):
        pipe.set(f"{redis_prefix}k{i}", i)
    pipe.execute()
    assert [int(v) for v in client.mget([f"{redis_prefix}k{i}" for i in range(100)])] == list(range(100))
