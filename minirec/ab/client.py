"""The client other services use to ask the assignment service for a user's variant.

    from minirec.ab.client import assign
    variant = assign("http://127.0.0.1:3005", user_id=196, experiment="ranker_v1", timeout=0.2)
    # -> "control" / "treatment" / ... ; None when the service cannot answer

`assign` never raises: any outage (refused, timeout, 4xx such as an unknown or stopped experiment,
5xx, a body that is not the expected JSON) returns None, and the caller serves its default arm
(the simulator sends no `variant`, so the recommender serves control). A 200 always carries a
variant: the assigned one, or the control for users outside the experiment (held out, outside the
layer slice or coverage); only assigned users get an Exposure event, so only they are analysed.

One pooled HTTP connection set per base URL is kept for the process (thread-safe), so a call
costs one round trip on a kept-alive connection.
"""

from __future__ import annotations

import threading

import httpx

_clients: dict[str, httpx.Client] = {}
_lock = threading.Lock()


def _client(base_url: str) -> httpx.Client:
    with _lock:
        c = _clients.get(base_url)
        if c is None:
            c = _clients[base_url] = httpx.Client(base_url=base_url, limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=64))
        return c


def assign_response(base_url: str, user_id: int, experiment: str, timeout: float = 0.5) -> dict | None:
    """The whole answer {experiment, variant, in_experiment, reason}, or None on any failure."""
    try:
        r = _client(base_url.rstrip("/")).post("/assign", json={"user_id": user_id, "experiment": experiment},
                                               timeout=timeout)
        if r.status_code != 200:
            return None
        body = r.json()
    except (httpx.HTTPError, ValueError):  # transport errors, timeouts, a body that is not JSON
        return None
    if not isinstance(body, dict) or not isinstance(body.get("variant"), str):
        return None
    return body


def assign(base_url: str, user_id: int, experiment: str, timeout: float = 0.5) -> str | None:
    """The variant to serve `user_id` in `experiment`, or None when the service cannot answer."""
    body = assign_response(base_url, user_id, experiment, timeout)
    return None if body is None else body["variant"]


def close() -> None:
    """Close the pooled connections (tests, shutdown)."""
    with _lock:
        for c in _clients.values():
            c.close()
        _clients.clear()
