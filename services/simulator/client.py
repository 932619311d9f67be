"""The simulator's calls to other services: the assignment service and the recommender (HTTP).

    session --Assigner.variant(user)--> variant | None --POST /recommend--> Served(items, request_id, ...)

`Recommender.recommend` raises `RecommenderError` (with a fix in the message) on
a connection failure, a timeout or a non-2xx answer; the runner counts it and
goes on with the next session.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


class RecommenderError(RuntimeError):
    """The recommender did not serve a list; `kind` is `unreachable`, `timeout` or `http_<status>`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Served:
    items: list[int]  # item ids, items[p] shown at 0-based position p
    request_id: str
    variant: str
    model_version: str
    fallback: str | None


class Assigner:
    """The experiment arm of a user from the assignment service (`minirec.ab.client`).

    `variant(user_id)` is None when no experiment is configured (url or experiment empty), when the
    service cannot answer, or for users outside the experiment (`in_experiment` false): then no
    `variant` is sent (the recommender serves control) and events carry the variant the recommender
    says it served. A user in the experiment gets their arm, and the service logged their Exposure.
    """

    def __init__(self, url: str | None, experiment: str | None, timeout_s: float = 0.5):
        self.url, self.experiment, self.timeout_s = url, experiment, timeout_s
        self.unanswered = 0  # calls the service did not answer (counted; the session goes on)

    def variant(self, user_id: int) -> str | None:
        if not self.url or not self.experiment:
            return None
        from minirec.ab.client import assign_response

        body = assign_response(self.url, user_id, self.experiment, timeout=self.timeout_s)
        if body is None:
            self.unanswered += 1
            return None
        return body["variant"] if body.get("in_experiment") else None


NO_EXPERIMENT = Assigner(None, None)


class Recommender:
    """A small HTTP client for POST /recommend (one connection pool, shared by the session threads)."""

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s,
                                  limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

    def recommend(self, user_id: int, k: int, exclude_seen: bool, variant: str | None = None) -> Served:
        body: dict = {"user_id": user_id, "k": k, "exclude_seen": exclude_seen}
        if variant is not None:
            body["variant"] = variant
        try:
            r = self._http.post("/recommend", json=body)
        except httpx.TimeoutException as exc:
            raise RecommenderError("timeout", f"the recommender at {self.url} timed out ({exc}); it may be "
                                   "overloaded: lower --concurrency or --speedup") from None
        except httpx.TransportError as exc:
            raise RecommenderError("unreachable", f"the recommender at {self.url} is unreachable ({exc}); run "
                                   "`make serve` (after `make up` and `make train`) or pass "
                                   "--recommender-url") from None
        if r.status_code != 200:
            raise RecommenderError(f"http_{r.status_code}", f"the recommender at {self.url} answered "
                                   f"{r.status_code}: {r.text[:200]}; see its GET /readyz")
        d = r.json()
        return Served(items=[int(i["item_id"]) for i in d["items"]], request_id=d["request_id"],
                      variant=d["variant"], model_version=d["model_version"], fallback=d.get("fallback"))

    def close(self) -> None:
        self._http.close()
