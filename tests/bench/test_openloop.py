"""The open-loop generator counts the time requests wait behind a server stall (no coordinated omission)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loadtests.openloop import run_open_loop


def _server(stall_s: float):
    """HTTP server whose handlers share one lock: the first request holds it for `stall_s` (a GC pause, a
    blocked event loop), so every request arriving meanwhile waits; the rest answer at once."""
    state = {"n": 0}
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                state["n"] += 1
                if state["n"] == 1:
                    time.sleep(stall_s)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the listen backlog: connections wait in it during the stall

    srv = Server(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_requests_due_during_a_stall_carry_it():
    srv = _server(stall_s=0.6)
    try:
        stats = run_open_loop(f"http://127.0.0.1:{srv.server_port}/x", [{"a": 1}], rate=50, seconds=2.0)
    finally:
        srv.shutdown()
    assert stats["errors"] == 0 and stats["ok"] == 100, stats["error_kinds"]
    # ~30 requests fall due during the 0.6 s stall; each waits for its end, measured from its due time
    assert stats["p90_ms"] < 600 and stats["max_ms"] >= 550
    assert stats["p50_ms"] < 50  # after the stall the server keeps up: the median is unaffected
    slow = stats["p99_ms"]
    assert slow > 300, stats  # a closed-loop client would have sent one request during the stall, not 30
