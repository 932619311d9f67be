"""The recommender as a BentoML 1.4 service.

    bentoml serve services.recommender.service:Recommender --port 3001   (make serve)

Endpoints
    POST /recommend        {user_id, k=10, exclude_seen=true, variant="control", timings=false}
    POST /recommend_batch  [ {...}, ... ]  the batchable API (adaptive batching)
    POST /similar_items    {item_id, k=10}
    GET  /livez /readyz /metrics, /docs.json (OpenAPI, made truthful by openapi.py)

How batching sits on the request path: BentoML batches only an API whose
argument is a list, and calling a batchable API from another API of the same
service failed under load (44 % HTTP 500s through `to_async` in a load test on
this machine with bentoml 1.4.40; not re-measured by a make target). So
`/recommend` is one in-process hop: the `RequestRouter` ASGI middleware
validates the single request and, with RECOMMENDER_BATCHING=true, rewrites it
to `/recommend_batch` with the body wrapped as `[body]`, then unwraps the
one-element answer. BentoML's dispatcher merges concurrent requests into one
pipeline call (one Redis round trip, one tower forward, one FAISS search).
With RECOMMENDER_BATCHING=false the same `/recommend` runs the pipeline for
one request. Should the dispatcher shed a request (503), the router serves it
unbatched instead, so a batching hiccup never reaches the client; overload is
refused before that, cheaply, by BentoML's max_concurrency (429).

The router also answers GET /readyz (JSON: ready = a model is loaded, plus what is
degraded) and GET /docs.json (BentoML's document corrected by openapi.truthful),
refuses a POST that is not application/json (415), and gives every error answer
of the API paths one shape (openapi.error_body).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

import bentoml  # noqa: E402

from minirec.settings import get_settings  # noqa: E402
from services.recommender.options import service_options  # noqa: E402
from services.recommender.schemas import (  # noqa: E402
    RecommendRequest,
    RecommendResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
)


def _cache_root_model_schemas() -> None:
    """Work around a BentoML 1.4.40 hot-path cost: `IORootModel.model_validate_json` and
    `.mime_type()` call `model_json_schema()`, which builds a full JSON schema through a new
    pydantic TypeAdapter on *every* request to an API whose input or output is a list (every
    batchable API). py-spy put it at ~38 % of the worker's CPU under load. The schema of a class
    never changes, so it is computed once per (class, arguments); callers get a shallow copy
    (the OpenAPI builder pops top-level keys)."""
    from _bentoml_sdk.io_models import IORootModel

    if getattr(IORootModel, "_minirec_schema_cache", None) is not None:
        return
    original = IORootModel.model_json_schema.__func__
    cache: dict = {}

    def model_json_schema(cls, *args, **kwargs):
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(cls, *args, **kwargs)
        return dict(cache[key])

    IORootModel.model_json_schema = classmethod(model_json_schema)
    IORootModel._minirec_schema_cache = cache


_cache_root_model_schemas()
S = get_settings()
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_ITEMS = 100  # requests in one /recommend_batch call
ENGINE: Any = None  # the worker's Engine, set in Recommender.__init__ (the router reads it)
JSON = [(b"content-type", b"application/json")]


async def _send_json(send, status: int, obj: Any, headers: list | None = None) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON, (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestRouter:
    """ASGI middleware: body-size limit, readiness gate, /recommend -> batchable API, latency metric."""

    API_PATHS = ("/recommend", "/recommend_batch", "/similar_items")

    def __init__(self, app, batching: bool, max_body: int = MAX_BODY_BYTES):
        self.app, self.batching, self.max_body = app, batching, max_body
        self._doc: dict | None = None  # the served OpenAPI document, built on first request

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if path in ("/readyz", "/docs.json") and scope["method"] != "GET":
            return await _send_json(send, 405, {"error": f"{scope['method']} {path}: only GET is served"},
                                    headers=[(b"allow", b"GET")])
        if path == "/readyz" and ENGINE is not None:
            # ready = a model is loaded; the JSON says what is degraded (the Redis probe runs off the loop)
            payload = await asyncio.to_thread(ENGINE.readiness)
            return await _send_json(send, 200 if payload["ready"] else 503, payload)
        if path == "/docs.json":
            return await self._docs(scope, send)
        if path not in (*self.API_PATHS, "/status"):
            return await self.app(scope, receive, send)
        ctype = dict(scope.get("headers") or []).get(b"content-type", b"application/json").split(b";")[0].strip()
        if scope["method"] == "POST" and ctype.lower() != b"application/json":
            return await _send_json(send, 415, {"error": f"content-type {ctype.decode(errors='replace')!r}: send "
                                                         "the request as application/json"})
        if path == "/status":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        try:
            await self._handle(scope, receive, send, path)
        finally:
            if ENGINE is not None:
                ENGINE.m.request.labels(path).observe(time.perf_counter() - t0)

    async def _handle(self, scope, receive, send, path):
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return await _send_json(send, 413, {"error": f"request body is {int(declared)} bytes; the limit "
                                                         f"is {self.max_body} bytes (one JSON request object)"})
        body = b""
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.max_body:
                return await _send_json(send, 413, {"error": f"request body exceeds the limit of "
                                                             f"{self.max_body} bytes"})
        if ENGINE is not None and "control" not in ENGINE.status.models:
            return await _send_json(send, 503, {"error": "model not loaded; the service is not ready "
                                                         f"({ENGINE.status.model_error}); see GET /readyz"})
        if path == "/recommend_batch":
            # BentoML parses a list body with json.loads and answers 500 on a decode error
            try:
                items = json.loads(body or b"null")
            except ValueError as exc:
                return await _send_json(send, 400, {"error": f"request body is not valid JSON: {exc}"})
            if isinstance(items, list) and not 1 <= len(items) <= MAX_BATCH_ITEMS:
                return await _send_json(send, 400, {"error": f"requests: a list of 1 to {MAX_BATCH_ITEMS} "
                                                             f"request objects, got {len(items)}"})
        if self.batching and path == "/recommend" and scope["method"] == "POST" and self._valid(body):
            status, headers, out = await self._call(scope, "/recommend_batch", b"[" + body + b"]")
            if status == 200:
                out = out.strip()[1:-1]  # "[{...}]" -> "{...}": one request in, one answer out
                return await self._reply(send, status, headers, out)
            if status != 503:
                return await self._reply(send, status, headers, out)
            if ENGINE is not None:
                ENGINE.m.shed.inc()  # the dispatcher shed it: serve it unbatched below
        status, headers, out = await self._call(scope, path, body)
        await self._reply(send, status, headers, out)

    async def _docs(self, scope, send) -> None:
        """BentoML's OpenAPI document, made truthful once per process (services/recommender/openapi.py)."""
        if self._doc is None:
            from services.recommender.openapi import truthful

            status, _, body = await self._call(scope, "/docs.json", b"")
            if status != 200:
                return await _send_json(send, status, {"error": "the OpenAPI document could not be built"})
            self._doc = truthful(json.loads(body), max_batch=MAX_BATCH_ITEMS)
        await _send_json(send, 200, self._doc)

    @staticmethod
    def _valid(body: bytes) -> bool:
        """Only a valid single request is batched; anything else gets /recommend's own 4xx."""
        try:
            RecommendRequest.model_validate_json(body)
            return True
        except Exception:
            return False

    async def _call(self, scope, path: str, body: bytes) -> tuple[int, list, bytes]:
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: dict = {}
        chunks: list[bytes] = []

        async def capture(msg):
            if msg["type"] == "http.response.start":
                start.update(msg)
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        inner = dict(scope, path=path, raw_path=path.encode())
        inner["headers"] = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"] + [
            (b"content-length", str(len(body)).encode())]
        await self.app(inner, receive, capture)
        return start.get("status", 500), list(start.get("headers", [])), b"".join(chunks)

    @staticmethod
    async def _reply(send, status: int, headers: list, body: bytes) -> None:
        if status >= 400:  # one error shape for every endpoint and status (openapi.ErrorBody)
            from services.recommender.openapi import error_body

            body = error_body(status, body)
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"] + JSON
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@bentoml.service(**service_options("recommender"))
class Recommender:
    def __init__(self) -> None:
        global ENGINE
        import logging

        from services.recommender.engine import Engine

        logging.getLogger("services.recommender").setLevel(logging.INFO)  # BentoML shows WARNING+ otherwise
        self.engine = ENGINE = Engine()

    @bentoml.on_shutdown
    def drain(self) -> None:
        """SIGTERM: BentoML runs this after the last in-flight request; the impression buffer is drained
        within RECOMMENDER_SHUTDOWN_DRAIN_S and the balance (logged = sent + dropped) is logged."""
        self.engine.close()

    @bentoml.api(route="/recommend")
    def recommend(self, request: RecommendRequest, /) -> RecommendResponse:
        """Top-k films for one user (batched with concurrent requests when batching is on)."""
        return self.engine.recommend([request])[0]

    @bentoml.api(route="/recommend_batch", batchable=True, max_batch_size=S.recommender_max_batch_size,
                 max_latency_ms=S.recommender_max_latency_ms)
    def recommend_batch(self, requests: list[RecommendRequest], /) -> list[RecommendResponse]:
        """Several users in one call; BentoML's adaptive batcher also merges concurrent calls here."""
        return self.engine.recommend(requests)

    @bentoml.api(route="/similar_items")
    def similar_items(self, request: SimilarItemsRequest, /) -> SimilarItemsResponse:
        """Films nearest to a film in the item-embedding space (cosine)."""
        from bentoml.exceptions import NotFound

        from services.recommender.engine import UnknownItem

        try:
            return self.engine.similar_items(request)
        except UnknownItem as exc:
            raise NotFound(str(exc)) from exc

    @bentoml.api(route="/status")
    def status(self) -> dict:
        """What GET /readyz answers: ready (a model is loaded), what is degraded, the versions each arm serves."""
        return self.engine.readiness()

    def __is_ready__(self) -> bool:
        return self.engine.ready()


Recommender.add_asgi_middleware(RequestRouter, batching=S.recommender_batching)
