"""The benchmark's floor: a bare ASGI app on the same uvicorn settings as the service (`make bench-assignment`).

    POST /assign -> reads the body, answers a constant AssignResponse-shaped JSON (no parsing, no hash,
                    no metrics, no Kafka); GET /readyz -> 200

What it costs is what the server stack itself costs per request (uvloop, httptools, the ASGI
call); the service's throughput over this one's is the share the service's own work leaves.
"""

from __future__ import annotations

import argparse

BODY = b'{"experiment":"ranker_v1","variant":"control","in_experiment":true,"reason":"assigned"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # drain the request body, as the service does
        msg = await receive()
        more = msg.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from services.assignment.settings import UVICORN

    p = argparse.ArgumentParser(prog="python -m services.assignment.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", **UVICORN)  # the service's settings
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
