"""The drift process's HTTP endpoints (one port, DRIFT_METRICS_PORT):

    GET  /metrics   Prometheus text format (monitoring.drift.metrics)
    GET  /healthz   200 "ok"
    POST /alerts    Alertmanager webhook (JSON, version 4): each alert named DriftSustained is one
                    decision of the trigger: firing = sustained, resolved = the episode ended; the
                    episode id is the alert's fingerprint and start time. Other alerts are ignored.
                    Bad JSON or a payload without an `alerts` list -> 400 naming the problem.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ALERT = "DriftSustained"
MAX_BODY = 1 << 20  # Alertmanager groups are small; anything larger is refused


def handle_alerts(payload: object, trigger) -> list[dict]:
    """Decisions for one webhook payload; raises ValueError naming what is wrong with it."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("expected an Alertmanager webhook payload: a JSON object with an `alerts` list")
    out = []
    for a in payload["alerts"]:
        if not isinstance(a, dict) or not isinstance(a.get("labels"), dict):
            raise ValueError("each alert needs a `labels` object")
        if a["labels"].get("alertname") != ALERT:
            continue
        firing = a.get("status", payload.get("status")) == "firing"
        episode = f"{a.get('fingerprint', '')}@{a.get('startsAt', '')}"
        out.append(trigger.signal(sustained=firing, episode=episode, source="alertmanager",
                                  context={"alert": {"labels": a["labels"], "startsAt": a.get("startsAt"),
                                                     "status": a.get("status")}}))
    return out


def serve(host: str, port: int, registry, trigger=None) -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; returns the server (`.shutdown()` stops it)."""
    lock = threading.Lock()  # one decision at a time (Alertmanager may retry concurrently)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: Prometheus scrapes every few seconds
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/metrics"):
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path.startswith("/healthz"):
                self._send(200, b"ok", "text/plain")
            else:
                self._send(404, b'{"error": "unknown path; try /metrics, /healthz or POST /alerts"}')

        def do_POST(self):
            if not self.path.startswith("/alerts"):
                return self._send(404, b'{"error": "unknown path; the webhook is POST /alerts"}')
            if trigger is None:
                return self._send(503, b'{"error": "this process has no trigger configured"}')
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                return self._send(413, b'{"error": "body larger than 1 MiB"}')
            try:
                payload = json.loads(self.rfile.read(n) or b"null")
                with lock:
                    decisions = handle_alerts(payload, trigger)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                return self._send(400, json.dumps({"error": str(exc)}).encode())
            self._send(200, json.dumps({"decisions": [d["action"] for d in decisions]}).encode())

    httpd = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=httpd.serve_forever, name="drift-http", daemon=True).start()
    return httpd
