"""The ASGI app: POST /assign, GET /experiments, /healthz, /readyz, /metrics, OpenAPI at /openapi.json.

    POST /assign {user_id, experiment}
      -> body checks (size, JSON, schema)          4xx ErrorBody naming the field
      -> Assigner.experiment(name, now)             404 unknown / 409 stopped or not started
      -> [Redis EXISTS seen-set, targeted only]     timeout -> control, reason audience_unknown
      -> Assigner.assign -> {variant, in_experiment, reason}
      -> in_experiment: EventLog.log(Exposure)      a queue put; Kafka outages drop and count

FastAPI for the routing, the OpenAPI document and the error handlers; /assign reads its body
itself (`model_validate_json` on the raw bytes) and answers pre-encoded JSON, because FastAPI's
per-request dependency and response-model machinery would cost more than the hash and the
lookup it wraps. Its OpenAPI entry declares the same request model, so the document stays
true (tests/assignment/test_openapi.py fuzzes the running server against it).
"""

from __future__ import annotations

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

from minirec.ab.assign import Assigner, ExperimentError
from minirec.ab.config import ExperimentsConfig, load
from minirec.eventlog import EventLog
from minirec.events import Exposure, encode, key_of
from services.assignment.audience import Audience
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


def error(status: int, code: str, message: str, field: str | None = None) -> Response:
    body = json.dumps({"code": code, "message": message, "field": field}, separators=(",", ":"))
    return Response(body, status_code=status, media_type=JSON)


def validation_error(exc: ValidationError) -> Response:
    errs = exc.errors(include_url=False)
    if any(e["type"] in ("json_invalid", "json_type") for e in errs):
        return error(400, "bad_json", f"the body is not a JSON object: {errs[0]['msg']}; send "
                     '{"user_id": 196, "experiment": "ranker_v1"}')
    first = errs[0]
    field = ".".join(map(str, first["loc"])) or None
    return error(422, "invalid_request", f"{field or 'body'}: {first['msg']}", field)


def experiment_info(cfg: ExperimentsConfig, now: datetime) -> ExperimentsResponse:
    h = cfg.holdout
    return ExperimentsResponse(
        holdout=HoldoutInfo(share=h.share, salt=h.salt) if h else None, layers=dict(cfg.layers),
        experiments=[ExperimentInfo(name=e.name, description=e.description, status=e.status(now),
                                    variants=dict(e.variants), coverage=e.coverage, layer=e.layer,
                                    layer_range=e.layer_range, audience=e.audience.value, salt=e.salt,
                                    start=e.start, stop=e.stop) for e in cfg.experiments.values()])


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(cfg: AssignmentConfig, experiments: ExperimentsConfig | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    """The app over a validated experiments file (ConfigError here, before serving, when it is bad)."""
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

    @app.post("/assign", response_model=AssignResponse, responses=ERRORS, summary="the variant of one user",
              openapi_extra={"requestBody": {"required": True, "content": {
                  JSON: {"schema": AssignRequest.model_json_schema()}}}})
    async def assign(request: Request) -> Response:
        t0 = time.perf_counter()
        body = await read_body(request, cfg.max_body_bytes)
        if body is None:
            metrics.requests.labels("-", "body_too_large").inc()
            return error(413, "body_too_large", f"the body is larger than {cfg.max_body_bytes} bytes; send "
                         "one {user_id, experiment} object")
        try:
            req = AssignRequest.model_validate_json(body)
        except ValidationError as exc:
            resp = validation_error(exc)
            metrics.requests.labels("-", json.loads(resp.body)["code"]).inc()
            return resp
        now = clock()
        try:
            exp = assigner.experiment(req.experiment, now)
        except ExperimentError as exc:
            metrics.requests.labels(metrics.label(req.experiment), exc.code).inc()
            return error(STATUS[exc.code], exc.code, exc.message, "experiment")
        returning = None
        if assigner.needs_audience(exp, req.user_id):
            returning = await state["audience"].returning(req.user_id)
        a = assigner.assign(req.experiment, req.user_id, now, returning=lambda _u: returning)
        if a.in_experiment:
            ev = Exposure(user_id=req.user_id, experiment=a.experiment, variant=a.variant, event_time=now)
            state["log"].log(key_of(ev), encode(ev))
        metrics.requests.labels(a.experiment, a.reason).inc()
        out = (f'{{"experiment":{json.dumps(a.experiment)},"variant":{json.dumps(a.variant)},'
               f'"in_experiment":{"true" if a.in_experiment else "false"},"reason":"{a.reason}"}}')
        metrics.seconds.observe(time.perf_counter() - t0)
        return Response(out, media_type=JSON)

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

    return app
