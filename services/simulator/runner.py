"""The simulation loop: start each session on schedule, ask for a list, click, emit.

    plan + offsets --dispatcher (sleeps until start + offset)--> thread pool --play(session)-->
        Assigner.variant -> POST /recommend -> ClickModel.click -> Interaction events -> sink

Sessions start at wall time `start + offset` (see replay.offsets_s) and run on
a pool of `concurrency` threads, so a slow answer delays no other session's
start. Nothing a session draws depends on the pool: its generator is seeded by
(seed, user, session index). Failures are counted by kind in
`Summary.errors` and never stop the run:

    unreachable | timeout | http_<status>   the recommender did not serve a list (session skipped)
    kafka                                   an event the sink could not deliver
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from minirec.events import Interaction
from services.simulator.clicks import ClickModel, session_rng
from services.simulator.client import NO_EXPERIMENT, Assigner, Recommender, RecommenderError
from services.simulator.replay import Session
from services.simulator.scenarios import Scenario


@dataclass(frozen=True)
class RunConfig:
    k: int = 10
    seed: int = 0
    exclude_seen: bool = True  # the release's seen-sets stop at the held-out period's start
    ratings: bool = False  # also emit a `rating` event (the held-out rating) after a click on a next item
    concurrency: int = 8
    duration_s: float | None = None  # wall-clock bound; sessions not started by then are skipped


@dataclass
class Summary:
    sessions: int = 0  # sessions started
    requests: int = 0  # lists served (2xx)
    shown: int = 0  # items shown in those lists
    clicks: int = 0  # clicks on a served item
    sessions_clicked: int = 0  # served lists with at least one click
    relevant_clicks: int = 0  # clicks on an item the user rated in the held-out period
    organic_clicks: int = 0  # clicks outside a list (scenarios)
    ratings: int = 0  # rating events
    events: int = 0  # events handed to the sink
    fallbacks: Counter = field(default_factory=Counter)  # lists the recommender served from popularity
    errors: Counter = field(default_factory=Counter)  # kind -> count
    error_hints: dict = field(default_factory=dict)  # kind -> last message (names the fix)
    by_variant: dict = field(default_factory=dict)  # served variant -> {"shown": n, "clicks": n}
    skipped: int = 0  # sessions not started (duration bound or interrupt)
    wall_s: float = 0.0

    @property
    def ctr(self) -> float:
        """Clicks per shown item."""
        return self.clicks / self.shown if self.shown else 0.0

    @property
    def list_ctr(self) -> float:
        """Share of served lists with at least one click."""
        return self.sessions_clicked / self.requests if self.requests else 0.0

    def as_dict(self) -> dict:
        return {"sessions": self.sessions, "requests": self.requests, "shown": self.shown, "clicks": self.clicks,
                "ctr": round(self.ctr, 5), "list_ctr": round(self.list_ctr, 5),
                "relevant_clicks": self.relevant_clicks, "organic_clicks": self.organic_clicks,
                "ratings": self.ratings, "events": self.events, "fallbacks": dict(self.fallbacks),
                "errors": dict(self.errors), "by_variant": {k: dict(v) for k, v in self.by_variant.items()},
                "skipped": self.skipped, "wall_s": round(self.wall_s, 2)}


class Runner:
    def __init__(self, recommender: Recommender, sink, model: ClickModel, scenario: Scenario, cfg: RunConfig,
                 assigner: Assigner = NO_EXPERIMENT):
        self.rec, self.sink, self.model, self.scenario, self.cfg = recommender, sink, model, scenario, cfg
        self.assigner = assigner
        self.summary = Summary()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def play(self, s: Session) -> None:
        """One session: list, clicks, events. Never raises for a service failure (counts it)."""
        rng = session_rng(self.cfg.seed, s.user_id, s.index)
        try:
            served = self.rec.recommend(s.user_id, self.cfg.k, self.cfg.exclude_seen, self.assigner.variant(s.user_id))
        except RecommenderError as exc:
            with self._lock:
                self.summary.errors[exc.kind] += 1
                self.summary.error_hints[exc.kind] = str(exc)
            return
        positions = self.model.click(served.items, s.next_items, rng, self.scenario.attract(s))
        events = []
        for p in positions:
            item = served.items[p]
            base = dict(user_id=s.user_id, item_id=item, request_id=served.request_id, position=p,
                        variant=served.variant)
            events.append(Interaction(action="click", **base))
            if self.cfg.ratings and item in s.next_items:
                events.append(Interaction(action="rating", rating=s.next_items[item], **base))
        organic = self.scenario.organic(s, rng)
        events += [Interaction(user_id=s.user_id, item_id=i, action="click") for i in organic]
        for e in events:
            self.sink.send(e)
        with self._lock:
            m = self.summary
            m.requests += 1
            m.shown += len(served.items)
            m.clicks += len(positions)
            m.sessions_clicked += bool(positions)
            m.relevant_clicks += sum(served.items[p] in s.next_items for p in positions)
            m.organic_clicks += len(organic)
            m.ratings += sum(e.action == "rating" for e in events)
            m.events += len(events)
            if served.fallback:
                m.fallbacks[served.fallback] += 1
            arm = m.by_variant.setdefault(served.variant or "control", {"shown": 0, "clicks": 0})
            arm["shown"] += len(served.items)
            arm["clicks"] += len(positions)

    def run(self, plan: list[Session], offsets: list[float], on_done: Callable[[], None] | None = None) -> Summary:
        """Play `plan` on schedule; returns the summary (also on KeyboardInterrupt)."""
        t_start = time.monotonic()
        done = on_done or (lambda: None)

        def task(s: Session) -> None:
            try:
                self.play(s)
            finally:
                done()

        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="session")
        started = 0
        try:
            for s, off in zip(plan, offsets, strict=True):
                if self.cfg.duration_s is not None and off > self.cfg.duration_s:
                    break
                wait = t_start + off - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                if self.cfg.duration_s is not None and time.monotonic() - t_start > self.cfg.duration_s:
                    break
                pool.submit(task, s)
                started += 1
        except KeyboardInterrupt:
            pass  # finish what started, then summarise
        finally:
            pool.shutdown(wait=True)
        self.summary.sessions = started
        self.summary.skipped = len(plan) - started
        self._account_sink()
        self.summary.wall_s = time.monotonic() - t_start
        return self.summary

    def stop(self) -> None:
        self._stop.set()

    def _account_sink(self) -> None:
        close = getattr(self.sink, "close", None)
        if close:
            close()  # flush: the acknowledgements below are final
        failed = getattr(self.sink, "errors", 0)
        if failed:
            self.summary.errors["kafka"] += failed
            self.summary.error_hints["kafka"] = self.sink.last_error
