"""The OpenAPI document and the error bodies, made to tell the truth.

BentoML 1.4.40 generates `/docs.json` (OpenAPI 3.0.2) from the pydantic models,
with three untruths a generated client would trip over (found by
`st run <url>/docs.json --checks all`):

- optional fields arrive as `anyOf: [X, {type: "null"}]`, which 3.0 does not
  know (its `type` has no "null"), so validators read them as non-null; here
  they become `X` + `nullable: true`;
- error bodies are declared `{error: string, detail: string}`, but a
  validation error carries a list in `detail` and a 404 comes as a one-element
  list; every error body of this service now has one shape, `ErrorBody`
  (`error_body` rewrites what BentoML sends), declared for every status the
  service returns: 400, 404 (unknown item), 413 (body too large), 415 (not
  JSON), 429 (overload), 500, 503 (no model yet), 504 (request timeout);
- the 200 bodies of /recommend and /similar_items are inlined with their
  nulls dropped; they are rebuilt from the pydantic models; request bodies
  are marked required, and /recommend_batch takes 1..MAX_BATCH_ITEMS requests;
- `/readyz` answers JSON (`readiness()`), 200 or 503, declared as such.

The router (service.py) serves `truthful(doc)` for GET /docs.json and passes
every error answer of the API paths through `error_body`.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "title": "ErrorBody",
    "description": "every error answer of this service",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, naming the field or the fix"},
        "detail": {"type": "array", "items": {"type": "object"},
                   "description": "validation errors (loc, msg, type), one per invalid field; absent otherwise"},
    },
}
READINESS_SCHEMA = {
    "type": "object",
    "title": "Readiness",
    "required": ["ready", "degraded"],
    "properties": {
        "ready": {"type": "boolean", "description": "a model is loaded: the service can answer"},
        "degraded": {"type": "array", "items": {"type": "string"},
                     "description": "online_store_unavailable | feature_layout_not_loaded"},
    },
}
# statuses each API path can answer besides 200 (the router, BentoML's traffic limits, the handlers)
COMMON = (400, 413, 415, 429, 500, 503, 504)
ERRORS = {"/recommend": COMMON, "/recommend_batch": COMMON, "/similar_items": (*COMMON, 404),
          "/status": (400, 415, 429, 500, 504)}


def _nullable(node: Any) -> Any:
    """Rewrite every `anyOf: [X, {type: null}]` as X + nullable: true (OpenAPI 3.0), recursively."""
    if isinstance(node, list):
        return [_nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    alts = node.get("anyOf")
    if isinstance(alts, list) and {"type": "null"} in alts:
        rest = [a for a in alts if a != {"type": "null"}]
        node.pop("anyOf")
        if len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    return node


def _error_response(status: int) -> dict:
    return {"description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def _responses_from_models(schemas: dict) -> dict[str, dict]:
    """200 schemas built from our pydantic models (BentoML inlines them with the nulls dropped)."""
    from pydantic import TypeAdapter

    from services.recommender.schemas import RecommendResponse, SimilarItemsResponse

    ref = "#/components/schemas/{model}"
    for model in (RecommendResponse, SimilarItemsResponse):
        js = model.model_json_schema(ref_template=ref, mode="serialization")
        schemas.update(_nullable(js.pop("$defs", {})))
        schemas[model.__name__] = _nullable(js)
    batch = TypeAdapter(list[RecommendResponse]).json_schema(ref_template=ref, mode="serialization")
    batch.pop("$defs", None)
    return {"/recommend": {"$ref": ref.format(model="RecommendResponse")},
            "/similar_items": {"$ref": ref.format(model="SimilarItemsResponse")}, "/recommend_batch": batch}


def truthful(doc: dict, max_batch: int) -> dict:
    """BentoML's OpenAPI document -> the one this service serves (max_batch: requests per batch call)."""
    doc = _nullable(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):  # replaced by ErrorBody
        schemas.pop(name, None)
    schemas["ErrorBody"] = ERROR_SCHEMA
    schemas["Readiness"] = READINESS_SCHEMA
    ok_schemas = _responses_from_models(schemas)
    for path, statuses in ERRORS.items():
        op = doc.get("paths", {}).get(path, {}).get("post")
        if op is None:
            continue
        ok = op["responses"].get("200") or op["responses"].get(200)
        if path in ok_schemas:
            ok = {"description": "Successful Response", "content": {"application/json": {"schema": ok_schemas[path]}}}
        op["responses"] = {"200": ok, **{str(s): _error_response(s) for s in statuses}}
        body = op.get("requestBody")
        if body is not None and path != "/status":  # the body is required (an empty one is a 400)
            body["required"] = True
        if path == "/recommend_batch":  # the router refuses [] and more than max_batch requests
            body["content"]["application/json"]["schema"].update(minItems=1, maxItems=max_batch)
    ready = doc.get("paths", {}).get("/readyz", {}).get("get")
    if ready is not None:
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}
        ready["responses"] = {"200": {"description": "a model is loaded (degraded states listed)", "content": body},
                              "503": {"description": "no model loaded yet", "content": body}}
    return doc


def _message(detail: list) -> str:
    """pydantic error list -> "k: Input should be less than or equal to 100; user_id: Field required"."""
    parts = []
    for d in detail:
        loc = ".".join(str(x) for x in d.get("loc", ()) if x != "body") if isinstance(d, dict) else ""
        msg = d.get("msg", "") if isinstance(d, dict) else str(d)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def error_body(status: int, body: bytes) -> bytes:
    """Any error answer (BentoML's or ours) -> the ErrorBody shape: {"error": str, "detail"?: [...]}."""
    try:
        obj = json.loads(body) if body else None
    except ValueError:
        obj = body.decode(errors="replace").strip() or None
    if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], dict):
        obj = obj[0]  # BentoML 1.4.40 sends a 404 as a one-element list
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        detail = obj.get("detail")
        if isinstance(detail, list) and detail:
            out["detail"] = detail
            out["error"] = _message(detail)
        elif isinstance(obj.get("error"), str):
            out["error"] = obj["error"]
        elif isinstance(detail, str):
            out["error"] = detail
    elif isinstance(obj, str):
        out["error"] = obj
    out.setdefault("error", HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error")
    return json.dumps({"error": out["error"], **({"detail": out["detail"]} if "detail" in out else {})}).encode()
