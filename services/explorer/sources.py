"""Where each panel of the page comes from. Every function returns a dict; a part that cannot
answer (service down, no readout yet, no model) returns {"available": False, "note": <why + fix>}
instead of raising, so the page always renders.

    history      data/ml-100k ratings + the lake's clicks/ratings since     (parquet, cached catalogue)
    assignment   POST <assignment>/assign                                   (HTTP)
    recommend    POST <recommender>/recommend {timings: true} per arm       (HTTP)
    features     Feast get_online_features(two_tower_v1) + event times      (Redis)
    readout      artifacts/ab/<experiment>/report.json                      (`make ab-report`)
    drift        <drift monitor>/metrics gauges                             (HTTP)
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd

from services.explorer.settings import ExplorerConfig

HISTORY_ROWS = 15  # most recent ratings shown; the count says how many there are in all


def unavailable(note: str, **extra) -> dict:
    return {"available": False, "note": note, **extra}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


class Catalogue:
    """Titles, users and ratings of the dataset, read once (100k rows: ~10 MB, ~0.2 s)."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._loaded: tuple[dict[int, str], list[int], pd.DataFrame] | None = None

    def _load(self):
        with self._lock:
            if self._loaded is None:
                items = pd.read_parquet(self.data_dir / "items.parquet", columns=["item_id", "title"])
                users = pd.read_parquet(self.data_dir / "users.parquet", columns=["user_id"])
                inter = pd.read_parquet(self.data_dir / "interactions.parquet",
                                        columns=["user_id", "item_id", "rating", "event_timestamp"])
                titles = dict(zip(items["item_id"].astype(int), items["title"].astype(str), strict=True))
                self._loaded = (titles, sorted(users["user_id"].astype(int)), inter)
            return self._loaded

    def title(self, item_id: int) -> str:
        try:
            return self._load()[0].get(int(item_id), f"item {item_id}")
        except OSError:
            return f"item {item_id}"

    def users(self) -> list[int]:
        return self._load()[1]

    def ratings(self, user_id: int) -> pd.DataFrame:
        inter = self._load()[2]
        return inter[inter["user_id"] == user_id]


def history(cat: Catalogue, lake: Path, user_id: int) -> dict:
    """The user's ratings in the dataset (newest first, with titles) and their events in the lake."""
    t0 = time.perf_counter()
    try:
        rows = cat.ratings(user_id).sort_values("event_timestamp", ascending=False)
    except OSError as exc:
        return unavailable(f"the dataset cannot be read ({exc}); run `make data`")
    if rows.empty:
        return unavailable(f"user {user_id} has no ratings in the dataset (a new user: the recommender "
                           "serves the popularity fallback)", ms=_ms(t0))
    recent = [{"item_id": int(r.item_id), "title": cat.title(r.item_id), "rating": float(r.rating),
               "time": r.event_timestamp.strftime("%Y-%m-%d %H:%M")} for r in rows.head(HISTORY_ROWS).itertuples()]
    return {"available": True, "count": len(rows), "mean_rating": round(float(rows["rating"].mean()), 2),
            "recent": recent, "live": lake_events(cat, lake, user_id), "ms": _ms(t0)}


def lake_events(cat: Catalogue, lake: Path, user_id: int, limit: int = 10) -> list[dict]:
    """The user's newest clicks/ratings that reached the lake (the simulator's and the page's own)."""
    folder = Path(lake) / "interactions"
    if not folder.is_dir():
        return []
    try:
        df = pd.read_parquet(folder, columns=["user_id", "item_id", "action", "event_timestamp"],
                             filters=[("user_id", "==", int(user_id))])
    except (OSError, ValueError, KeyError):  # a half-written lake or an older schema: show nothing
        return []
    df = df.sort_values("event_timestamp", ascending=False).head(limit)
    return [{"item_id": int(r.item_id), "title": cat.title(r.item_id), "action": str(r.action),
             "time": pd.Timestamp(r.event_timestamp).strftime("%Y-%m-%d %H:%M:%S")} for r in df.itertuples()]


def assignment(client: httpx.Client, cfg: ExplorerConfig, user_id: int) -> dict:
    t0 = time.perf_counter()
    try:
        r = client.post(f"{cfg.assignment_url}/assign", json={"user_id": user_id, "experiment": cfg.experiment},
                        timeout=cfg.timeout_s)
    except httpx.HTTPError as exc:
        return unavailable(f"the assignment service at {cfg.assignment_url} does not answer "
                           f"({type(exc).__name__}); `make stack` starts it", ms=_ms(t0))
    if r.status_code != 200:
        return unavailable(f"the assignment service answered {r.status_code}: {r.text[:200]}", ms=_ms(t0))
    return {"available": True, **r.json(), "ms": _ms(t0)}


def recommend(client: httpx.Client, cfg: ExplorerConfig, cat: Catalogue, user_id: int, variant: str,
              k: int = 10) -> dict:
    """One real /recommend call for `variant` (it logs an impression like any other request)."""
    t0 = time.perf_counter()
    try:
        r = client.post(f"{cfg.recommender_url}/recommend", timeout=cfg.timeout_s,
                        json={"user_id": user_id, "k": k, "variant": variant, "timings": True})
    except httpx.HTTPError as exc:
        return unavailable(f"the recommender at {cfg.recommender_url} does not answer ({type(exc).__name__}); "
                           "`make stack` starts it", ms=_ms(t0))
    if r.status_code != 200:
        return unavailable(f"the recommender answered {r.status_code}: {r.text[:200]}", ms=_ms(t0))
    body = r.json()
    items = [{**it, "title": it.get("title") or cat.title(it["item_id"]), "position": i}
             for i, it in enumerate(body.get("items", []))]
    return {"available": True, "variant": body.get("variant", variant), "items": items,
            "model_version": body.get("model_version"), "request_id": body.get("request_id"),
            "fallback": body.get("fallback"), "timings_ms": body.get("timings_ms") or {}, "ms": _ms(t0)}


class OnlineFeatures:
    """The user's row of the `two_tower_v1` feature service through Feast (opened on first use:
    `import feast` costs seconds), with each value's event time, so the page shows its age."""

    SERVICE = "two_tower_v1"

    def __init__(self, cfg: ExplorerConfig):
        self.cfg = cfg
        self._store = None
        self._lock = threading.Lock()

    def _open(self):
        with self._lock:
            if self._store is None:
                from minirec.features.store import open_store

                self._store = open_store(self.cfg.feature_repo, project=self.cfg.feast_project,
                                         redis_host=self.cfg.redis_host, redis_port=self.cfg.redis_port)
            return self._store

    def warm(self) -> None:
        """Open the store ahead of the first page; a failure here is reported by the first read()."""
        if (self.cfg.feature_repo / "data" / "registry.db").exists():
            try:
                self._open()
            except Exception:  # noqa: BLE001 - read() reports it with the reason
                pass

    def read(self, user_id: int) -> dict:
        t0 = time.perf_counter()
        if not (self.cfg.feature_repo / "data" / "registry.db").exists():
            return unavailable(f"no Feast registry in {self.cfg.feature_repo}/data: run `make train`")
        try:
            store = self._open()
            resp = store.get_online_features(features=store.get_feature_service(self.SERVICE),
                                             entity_rows=[{"user_id": int(user_id)}])
            proto = resp.proto
        except Exception as exc:  # noqa: BLE001 - Redis down, registry unreadable: the panel says so
            return unavailable(f"the online store cannot be read ({type(exc).__name__}: {str(exc)[:160]})",
                               ms=_ms(t0))
        now = datetime.now(UTC)
        rows = []
        for name, vec in zip(proto.metadata.feature_names.val, proto.results, strict=True):
            if name == "user_id":
                continue
            value = _value(vec.values[0])
            ts = vec.event_timestamps[0].seconds if len(vec.event_timestamps) else 0
            when = datetime.fromtimestamp(ts, UTC) if ts > 0 else None
            rows.append({"name": name, "value": value, "status": _status(vec.statuses[0]),
                         "event_time": when.strftime("%Y-%m-%d %H:%M:%S") if when else None,
                         "age": _age((now - when).total_seconds()) if when else None})
        if all(r["value"] is None for r in rows):
            return unavailable(f"user {user_id} has no online row (cold start, or features not materialised: "
                               "`make train`)", ms=_ms(t0))
        return {"available": True, "service": self.SERVICE, "rows": rows, "ms": _ms(t0)}


def _value(v):
    """A Feast ValueProto as a short display value."""
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    x = getattr(v, kind)
    if kind.endswith("_list_val"):
        vals = list(x.val)
        shown = [round(e, 3) if isinstance(e, float) else e for e in vals[:8]]
        return f"{shown}{' …' if len(vals) > 8 else ''} ({len(vals)})"
    return round(x, 4) if isinstance(x, float) else x


def _status(code: int) -> str:
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

    return FieldStatus.Name(code).lower()


def _age(seconds: float) -> str:
    """Seconds as the largest sensible unit ("3.2 h", "29 y")."""
    for unit, size in (("y", 365.25 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def readout(cfg: ExplorerConfig) -> dict:
    """The experiment's last readout, as `make ab-report` wrote it."""
    path = cfg.ab_dir / cfg.experiment / "report.json"
    if not path.exists():
        return unavailable(f"no readout yet for {cfg.experiment} ({path} is missing): run "
                           f"`make ab-report EXP={cfg.experiment}` after some traffic")
    try:
        r = json.loads(path.read_text())
        arms = {name: {"users": a.get("users"), "ctr": a.get("ctr")} for name, a in r.get("arms", {}).items()}
        decision = r.get("decision") or {}
        return {"available": True, "path": str(path), "generated_at": r.get("generated_at"), "arms": arms,
                "srm_p": (r.get("srm") or {}).get("p"), "srm_blocked": (r.get("srm") or {}).get("blocked"),
                "winner": decision.get("winner"), "reason": decision.get("reason"),
                "command": r.get("command")}
    except (ValueError, AttributeError, TypeError) as exc:
        return unavailable(f"{path} is not a readout ({exc}); run `make ab-report EXP={cfg.experiment}` again")


DRIFT_GAUGES = ("drift_dataset_drift", "drift_consecutive_drifted_windows", "drift_trigger_windows",
                "drift_window_end_timestamp_seconds", "drift_baseline_ready")


def drift(client: httpx.Client, cfg: ExplorerConfig) -> dict:
    """The drift monitor's gauges of the last compared window and its window counters."""
    from prometheus_client.parser import text_string_to_metric_families

    t0 = time.perf_counter()
    try:
        r = client.get(cfg.drift_metrics_url, timeout=cfg.timeout_s)
        r.raise_for_status()
    except httpx.HTTPError as exc:
        return unavailable(f"the drift monitor at {cfg.drift_metrics_url} does not answer ({type(exc).__name__}); "
                           "`make stack` starts it", ms=_ms(t0))
    values, windows, groups = {}, {}, {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            if s.name in DRIFT_GAUGES:
                values[s.name] = s.value
            elif s.name == "drift_windows_total":
                windows[s.labels["outcome"]] = int(s.value)
            elif s.name == "drift_group_drift":
                groups[s.labels["group"]] = int(s.value)
    end = values.get("drift_window_end_timestamp_seconds") or 0
    compared = windows.get("compared", 0)
    return {"available": True, "windows": windows, "groups": groups, "compared": compared,
            "drifted": bool(values.get("drift_dataset_drift")) if compared else None,
            "streak": int(values.get("drift_consecutive_drifted_windows", 0)),
            "trigger_windows": int(values.get("drift_trigger_windows", 0)),
            "last_window_end": datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M:%S") if end else None,
            "ms": _ms(t0)}
