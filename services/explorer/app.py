"""The explorer's ASGI app (FastAPI + one Jinja2 template, no build step).

    GET  /                  the picker; /?user=196 renders that user's view (server-side)
    GET  /random            302 to a random dataset user's view
    GET  /api/user/{id}     the same view as JSON (what the page shows, for curl and tests)
    POST /api/click         {user_id, item_id, request_id?, position?, variant?} -> an Interaction
                            (action click) on TOPIC_INTERACTIONS through minirec.eventlog; 202
    GET  /healthz           200 "ok"

One view = the panels of services/explorer/sources.py, gathered in order, each timed; a panel
that cannot answer renders as "not available" with the reason, never as an error page.
"""

from __future__ import annotations

import random
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from minirec.eventlog import EventLog
from minirec.events import MAX_ID, Interaction, Variant, encode, key_of
from services.explorer import sources
from services.explorer.settings import ExplorerConfig

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
ARMS = ("control", "treatment")


class ClickRequest(BaseModel):
    """A click on a served item, as the page sends it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: int = Field(..., ge=1, le=MAX_ID)
    item_id: int = Field(..., ge=1, le=MAX_ID)
    request_id: str | None = Field(None, max_length=64)
    position: int | None = Field(None, ge=0, le=1000)
    variant: Variant | None = None


def gather(state: dict, cfg: ExplorerConfig, user_id: int) -> dict:
    """Every panel for one user; `stages_ms` is the wall time of each step of this request."""
    cat, http = state["catalogue"], state["http"]
    stages: dict[str, float] = {}

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        stages[name] = round((time.perf_counter() - t0) * 1000, 2)
        return out

    view = {"user_id": user_id, "experiment": cfg.experiment}
    view["assignment"] = timed("assign", sources.assignment, http, cfg, user_id)
    view["arms"] = {arm: timed(f"recommend_{arm}", sources.recommend, http, cfg, cat, user_id, arm)
                    for arm in ARMS}
    view["features"] = timed("online_features", state["features"].read, user_id)
    view["history"] = timed("history", sources.history, cat, cfg.lake_dir, user_id)
    view["readout"] = timed("readout", sources.readout, cfg)
    view["drift"] = timed("drift", sources.drift, http, cfg)
    view["stages_ms"] = stages
    view["assigned_arm"] = view["assignment"].get("variant") if view["assignment"]["available"] else None
    return view


def parse_user(raw: str | None, users: list[int]) -> tuple[int | None, str | None]:
    """(user id, None) or (None, problem) for the `user` query parameter."""
    if raw is None or raw == "":
        return None, None
    if raw == "random":
        return random.choice(users), None
    try:
        uid = int(raw)
    except ValueError:
        return None, f"user must be a whole number from 1 to {MAX_ID} (or `random`), got {raw[:40]!r}"
    if not 1 <= uid <= MAX_ID:
        return None, f"user must be from 1 to {MAX_ID}, got {uid}"
    return uid, None


def create_app(cfg: ExplorerConfig) -> FastAPI:
    state: dict = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state["catalogue"] = sources.Catalogue(cfg.data_dir)
        state["features"] = sources.OnlineFeatures(cfg)
        state["http"] = httpx.Client()
        state["clicks"] = EventLog(cfg.bootstrap, cfg.topic_interactions, buffer=1000, name="explorer-clicks")
        # open Feast in the background (`import feast` + the registry: seconds), so the first page is not slow
        threading.Thread(target=state["features"].warm, name="feast-warm", daemon=True).start()
        yield
        state["clicks"].close(timeout_s=3)
        state["http"].close()

    app = FastAPI(title="minirec explorer", lifespan=lifespan, docs_url=None, redoc_url=None)

    def users() -> list[int]:
        try:
            return state["catalogue"].users()
        except OSError:
            return [1]

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request, user: str | None = None):
        uid, problem = parse_user(user, await run_in_threadpool(users))
        view = await run_in_threadpool(gather, state, cfg, uid) if uid is not None else None
        ctx = {"view": view, "problem": problem, "cfg": cfg, "arms": ARMS, "asked": user or ""}
        return TEMPLATES.TemplateResponse(request, "index.html", ctx, status_code=422 if problem else 200)

    @app.get("/random")
    async def random_user():
        return RedirectResponse(f"/?user={random.choice(await run_in_threadpool(users))}", status_code=302)

    @app.get("/api/user/{user_id}")
    async def user_json(user_id: str):
        uid, problem = parse_user(user_id, await run_in_threadpool(users))
        if problem or uid is None:
            return JSONResponse({"error": "invalid_user", "detail": problem}, status_code=422)
        return await run_in_threadpool(gather, state, cfg, uid)

    @app.post("/api/click", status_code=202)
    async def click(body: ClickRequest):
        event = Interaction(user_id=body.user_id, item_id=body.item_id, action="click", request_id=body.request_id,
                            position=body.position, variant=body.variant)
        queued = state["clicks"].log(key_of(event), encode(event))
        return {"event_id": event.event_id, "queued": queued, "topic": cfg.topic_interactions,
                "sent_total": state["clicks"].sent, "dropped_total": sum(state["clicks"].dropped.values())}

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz():
        return "ok"

    return app
