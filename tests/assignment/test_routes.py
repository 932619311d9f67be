"""In process: the FastAPI route for /assign and the fast path in front of it give the same answers."""

from __future__ import annotations

import asyncio

import httpx

from minirec.eventlog import EventLog
from minirec.infra.process import free_port
from services.assignment.app import create_app
from services.assignment.audience import Audience
from services.assignment.settings import AssignmentConfig

BODIES = [b'{"user_id": 3, "experiment": "ranker_v1"}', b'{"user_id": 1, "experiment": "ranker_v1"}',
          b'{"user_id": 9, "experiment": "cold_start_v1"}', b'{"user_id": 0, "experiment": "ranker_v1"}',
          b'{"user_id": 5, "experiment": "nope"}', b'{"user_id": 5, "experiment": "title_badges_v0"}',
          b"not json", b"[]", b'{"user_id": 5}', b" " * 5000]


async def answers(app, bodies) -> list[tuple[int, bytes]]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return [((r := await c.post("/assign", content=b)).status_code, r.content) for b in bodies]


def test_fast_path_and_fastapi_route_agree():
    cfg = AssignmentConfig.from_settings()
    fast = create_app(cfg)
    state = fast.api.state.runtime  # what the lifespan would create: real clients of unreachable servers
    state["log"] = EventLog(f"127.0.0.1:{free_port()}", "nowhere", buffer=100)
    state["audience"] = Audience("127.0.0.1", free_port(), "test", 50)
    try:
        via_fast = asyncio.run(answers(fast, BODIES))
        via_api = asyncio.run(answers(fast.api, BODIES))
    finally:
        state["log"].close(timeout_s=0.2)
    assert via_fast == via_api
    assert [s for s, _ in via_fast] == [200, 200, 200, 422, 404, 409, 400, 422, 422, 413]
