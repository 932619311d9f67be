"""The ASGI app: POST /assign, GET /experiments, /healthz, /readyz, /metrics, OpenAPI at /openapi.json.

    POST /assign {user_id, experiment}
      -> body checks (size, JSON, schema)          4xx ErrorBody naming the field
      -> Assigner.experiment(name, now)             404 unknown / 409 stopped or not started
      -> [Redis EXISTS seen-set, targeted only]     timeout -> control, reason audience_unknown
      -> Assigner.assign -> {variant, in_experiment, reason}
      -> in_experiment: EventLog.log(Exposure bytes) a queue put; Kafka outages drop and count

Two layers, one decision function (`Decider.decide`: body bytes -> status, JSON bytes):
  * `FastPath`, the ASGI app uvicorn serves, answers POST /assign itself (read the body, decide,
    send two ASGI messages) and hands every other request, and the lifespan, to FastAPI;
  * FastAPI owns the other endpoints, the error handlers and the OpenAPI document, where
    /assign is declared with the same request, response and error models (its FastAPI route
    calls the same `decide`, so an app without the fast path answers identically).
Why: FastAPI's per-request routing, dependency and response machinery cost several times the
hash and the lookup (measured: README of services/assignment). The document stays true:
tests/assignment/test_openapi.py fuzzes the running server against it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from minirec.ab.assign import Assigner, Assignment, ExperimentError
from minirec.ab.config import ExperimentsConfig, load
from minirec.eventlog import EventLog
from services.assignment.audience import Audience
from services.assignment.exposures import ExposureEncoder
from services.assignment.metrics import AssignmentMetrics
from services.assignment.schemas import (
    AssignRequest,
    AssignResponse,
    ErrorBody,
    ExperimentInfo,
    ExperimentsResponse,
    Health,
    HoldoutInfo,
    Readiness,
)
from services.assignment.settings import AssignmentConfig

JSON = "application/json"
STATUS = {"unknown_experiment": 404, "experiment_stopped": 409, "experiment_not_started": 409}
ERRORS = {s: {"model": ErrorBody, "description": d} for s, d in (
    (400, "the body is not JSON"), (404, "unknown experiment"), (409, "the experiment is stopped or not started"),
    (413, "the body is larger than ASSIGNMENT_MAX_BODY_BYTES"), (422, "a field is missing, extra or invalid"))}


def error_bytes(status: int, code: str, message: str, field: str | None = None) -> tuple[int, bytes]:
    return status, json.dumps({"code": code, "message": message, "field": field}, separators=(",", ":")).encode()


def error(status: int, code: str, message: str, field: str | None = None) -> Response:
    return Response(error_bytes(status, code, message, field)[1], status_code=status, media_type=JSON)


def validation_problem(exc: ValidationError) -> tuple[int, str, str, str | None]:
    """(status, code, message, field) for a body that failed AssignRequest."""
    errs = exc.errors(include_url=False)
    if any(e["type"] in ("json_invalid", "json_type") for e in errs):
        return 400, "bad_json", (f"the body is not a JSON object: {errs[0]['msg']}; send "
                                 '{"user_id": 196, "experiment": "ranker_v1"}'), None
    first = errs[0]
    field = ".".join(map(str, first["loc"])) or None
    return 422, "invalid_request", f"{field or 'body'}: {first['msg']}", field


def experiment_info(cfg: ExperimentsConfig, now: datetime) -> ExperimentsResponse:
    h = cfg.holdout
    return ExperimentsResponse(
        holdout=HoldoutInfo(share=h.share, salt=h.salt) if h else None, layers=dict(cfg.layers),
        experiments=[ExperimentInfo(name=e.name, description=e.description, status=e.status(now),
                                    variants=dict(e.variants), coverage=e.coverage, layer=e.layer,
                                    layer_range=e.layer_range, audience=e.audience.value, salt=e.salt,
                                    start=e.start, stop=e.stop) for e in cfg.experiments.values()])


class Decider:
    """POST /assign's whole behaviour on raw bytes, shared by the fast path and the FastAPI route."""

    def __init__(self, assigner: Assigner, metrics: AssignmentMetrics, state: dict, clock: Callable[[], datetime]):
        self.assigner, self.metrics, self.state, self.clock = assigner, metrics, state, clock
        self._counters: dict[tuple[str, str], object] = {}  # (experiment label, outcome) -> bound child
        self._arms: dict[tuple[str, str], object] = {}  # (experiment, variant) -> bound child
        self._answers: dict[Assignment, bytes] = {}  # Assignment (frozen) -> response body
        self.exposures = ExposureEncoder()

    def count(self, experiment: str, outcome: str) -> None:
        key = (self.metrics.label(experiment), outcome)
        c = self._counters.get(key)
        if c is None:
            c = self._counters[key] = self.metrics.requests.labels(*key)
        c.inc()

    def too_large(self, limit: int) -> tuple[int, bytes]:
        self.count("-", "body_too_large")
        return error_bytes(413, "body_too_large", f"the body is larger than {limit} bytes; send one "
                           "{user_id, experiment} object")

    async def decide(self, body: bytes) -> tuple[int, bytes]:
        t0 = time.perf_counter()
        try:
            req = AssignRequest.model_validate_json(body)
        except ValidationError as exc:
            status, code, message, field = validation_problem(exc)
            self.count("-", code)
            return error_bytes(status, code, message, field)
        now = self.clock()
        try:
            exp = self.assigner.experiment(req.experiment, now)
        except ExperimentError as exc:
            self.count(req.experiment, exc.code)
            return error_bytes(STATUS[exc.code], exc.code, exc.message, "experiment")
        returning = None
        if self.assigner.needs_audience(exp, req.user_id):
            returning = await self.state["audience"].returning(req.user_id)
        a = self.assigner.assign(req.experiment, req.user_id, now, returning=lambda _u: returning, checked=exp)
        if a.in_experiment:
            self.state["log"].log(*self.exposures.encode(req.user_id, a.experiment, a.variant, now))
            arm = self._arms.get((a.experiment, a.variant))
            if arm is None:
                arm = self._arms[(a.experiment, a.variant)] = self.metrics.assigned.labels(a.experiment, a.variant)
            arm.inc()
        self.count(a.experiment, a.reason)
        out = self._answers.get(a)
        if out is None:  # a handful of distinct answers per experiment: encode each once
            out = self._answers[a] = AssignResponse(**dataclasses.asdict(a)).model_dump_json().encode()
        self.metrics.seconds.observe(time.perf_counter() - t0)
        return 200, out


class FastPath:
    """The ASGI app served: POST /assign directly, everything else (and the lifespan) through FastAPI."""

    def __init__(self, api: FastAPI, decider: Decider, max_body: int):
        self.api, self.decider, self.max_body = api, decider, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/assign" or scope["method"] != "POST":
            return await self.api(scope, receive, send)
        status, body = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope, receive) -> tuple[int, bytes]:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return self.decider.too_large(self.max_body)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return 400, b""
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return self.decider.too_large(self.max_body)
            chunks.append(chunk)
            more = msg.get("more_body", False)
        return await self.decider.decide(b"".join(chunks))


def create_app(cfg: AssignmentConfig, experiments: ExperimentsConfig | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastPath:
    """The app over a validated experiments file (ConfigError here, before serving, when it is bad);
    `.api` is the FastAPI app behind the fast path."""
    experiments = experiments or load(cfg.experiments)
    assigner = Assigner(experiments)
    metrics = AssignmentMetrics(experiments)
    state: dict = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state["log"] = EventLog(cfg.bootstrap, cfg.topic_exposures, cfg.exposure_buffer, name="exposures",
                                on_sent=metrics.sent.inc, on_dropped=lambda r, n: metrics.dropped.labels(r).inc(n))
        state["audience"] = Audience(cfg.redis_host, cfg.redis_port, cfg.feast_project, cfg.redis_timeout_ms,
                                     on_result=lambda r: metrics.audience.labels(r).inc())
        yield
        state["log"].close(timeout_s=3)
        await state["audience"].close()

    app = FastAPI(title="minirec assignment", version="1",
                  description="A/B assignment: experiments from services/assignment/experiments.yaml, bucketing "
                              "equal to the GrowthBook SDK, one Exposure event per assignment.",
                  lifespan=lifespan)
    app.state.assigner, app.state.metrics, app.state.runtime = assigner, metrics, state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return error(exc.status_code, code, f"{exc.detail}; the API is POST /assign, GET /experiments, "
                     "/healthz, /readyz, /metrics, /docs")

    @app.exception_handler(RequestValidationError)
    async def request_error(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        field = ".".join(map(str, first.get("loc", ()))) or None
        return error(422, "invalid_request", f"{field}: {first.get('msg')}", field)

    decider = Decider(assigner, metrics, state, clock)

    @app.post("/assign", response_model=AssignResponse, responses=ERRORS, summary="the variant of one user",
              openapi_extra={"requestBody": {"required": True, "content": {
                  JSON: {"schema": AssignRequest.model_json_schema()}}}})
    async def assign(request: Request) -> Response:
        """Served by FastPath in the running service; this route answers the same for an app without it."""
        body = await request.body()
        status, out = decider.too_large(cfg.max_body_bytes) if len(body) > cfg.max_body_bytes else \
            await decider.decide(body)
        return Response(out, status_code=status, media_type=JSON)

    @app.get("/experiments", response_model=ExperimentsResponse, summary="every experiment in the file")
    async def list_experiments() -> ExperimentsResponse:
        return experiment_info(experiments, clock())

    @app.get("/healthz", response_model=Health, summary="the process answers")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}},
             summary="ready once the Exposure producer has reached Kafka")
    async def readyz() -> Response:
        log = state.get("log")
        connected = bool(log is not None and log.connected)
        body = Readiness(ready=connected, experiments=len(experiments.experiments),
                         kafka="connected" if connected else "unreachable",
                         reason=None if connected else "Kafka has not answered the Exposure producer yet; "
                                                       "run `make up` or set KAFKA_HOST/KAFKA_PORT")
        return JSONResponse(body.model_dump(), status_code=200 if connected else 503)

    @app.get("/metrics", summary="Prometheus text format", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        metrics.refresh_info(clock())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return FastPath(app, decider, cfg.max_body_bytes)
