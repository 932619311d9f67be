"""Who is a returning user: one Redis round trip, only for experiments that target an audience.

    returning(user_id) = EXISTS <project>:seen:<user_id>     (minirec.features.seen: every item the user
                                                              rated or clicked; `make train` backfills it,
                                                              the stream processor adds each click)

So "new" means: nothing of this user has reached the system yet. The answer can change once
(new -> returning, after the user's first click is processed): a user who entered a `new`
experiment later leaves it (reason audience_mismatch, control served). The readout counts each
user in the arm of the first exposure (intention to treat), so this does not bias it; it does
shorten a new user's time in the treatment, which is what targeting new users means.

An outage or a lookup slower than ASSIGNMENT_REDIS_TIMEOUT_MS answers None: the user gets the
control with reason "audience_unknown" and no exposure, never an error.
"""

from __future__ import annotations

import asyncio
import logging

from minirec.features.seen import seen_key

log = logging.getLogger("assignment")


class Audience:
    def __init__(self, host: str, port: int, project: str, timeout_ms: int, on_result=None):
        import redis.asyncio as aioredis

        t = timeout_ms / 1000
        self.project, self.timeout_s = project, t
        self.client = aioredis.Redis(host=host, port=port, socket_timeout=t, socket_connect_timeout=t)
        self._on_result = on_result or (lambda result: None)
        self._warned = False

    async def returning(self, user_id: int) -> bool | None:
        try:
            found = await asyncio.wait_for(self.client.exists(seen_key(self.project, user_id)), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - timeout, refused, reset: degrade to "unknown"
            if not self._warned:
                log.warning("audience lookup failed (%s: %s): targeted experiments serve the control until "
                            "Redis answers; run `make up` or set REDIS_HOST/REDIS_PORT", type(exc).__name__, exc)
                self._warned = True
            self._on_result("unavailable")
            return None
        self._warned = False
        self._on_result("returning" if found else "new")
        return bool(found)

    async def close(self) -> None:
        await self.client.aclose()
