"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from web.api.routing import OPERATIONS, Operation
from web.api.schemas import MAX_ID
from web.api.views import FieldErrorsOut, ProblemOut

TITLE = "order_flow API"
VERSION = "1.0.0"
INTRO = """\
JSON API of order_flow: customers, products, orders, invoices and human tasks.

**Authentication.** Every operation needs `Authorization: Bearer <token>`; an
administrator issues a token with `order-flow users token NAME`. The API never
reads the browser session, so CSRF does not apply.

**Who may do what.**

| operation | clerk | supervisor / admin | finance group |
|---|---|---|---|
| read and list anything | yes | yes | yes |
| create customers, create orders | yes | yes | yes |
| submit / cancel an order | their own orders | any order | their own orders |
| create products | no | yes | no |
| record payments | no | yes | yes |
| claim / complete tasks | tasks of their groups | any task | tasks of their groups |

The workflow's own rules apply on top (a guard may still refuse a move: 409).

**Errors.** Bad input is a 422 (a body that is not JSON a 400) with one entry per
field, e.g. `{"errors": [{"field": "lines[0].qty", "message": "must be greater than 0"}]}`;
nothing is written. Other errors read `{"error": "not_found", "message": "..."}`:
401 no or bad token, 403 not allowed, 404 no such object, 409 conflict or a move
the workflow does not allow now. Amounts are decimal strings, never floats.

**Lists** take `limit` (1-200, default 50) and `offset`, and answer
`{"items": [...], "total": n, "limit": ..., "offset": ...}`.
"""

_REASONS = {
    200: "OK",
    201: "Created",
    400: "The body is not a JSON object",
    401: "No token, or an unknown one",
    403: "The role or groups do not allow it",
    404: "No such object",
    409: "A conflict: stale version, reused idempotency key, or a move not allowed now",
    422: "Invalid input, one entry per field; nothing was written",
}
_REF = "#/components/schemas/{model}"


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (FieldErrorsOut, "serialization"): None,
        (ProblemOut, "serialization"): None,
    }
    for op in OPERATIONS:
        if op.body is not None:
            seen[(op.body, "validation")] = None
        if op.response is not None:
            seen[(op.response, "serialization")] = None
    return list(seen)


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the null that stands for "not given"."""
    out = dict(schema)
    variants = out.pop("anyOf", None)
    if variants is not None:
        rest = [v for v in variants if v.get("type") != "null"]
        if len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
    if out.get("default", 0) is None:
        del out["default"]
    out.pop("title", None)
    return out


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "example": 1,
        }
        for name in op.path_params
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(mode="validation")
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": _plain(prop),
            }
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    for header in op.headers:
        params.append(
            {
                "name": header.name,
                "in": "header",
                "required": header.required,
                "description": header.description,
                "schema": header.schema,
            }
        )
    return params


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    statuses = set(op.errors)
    if op.rule is not None:
        statuses |= {401, 403}
    if op.path_params:
        statuses.add(404)
    if op.query is not None or op.body is not None:
        statuses.add(422)
    if op.body is not None:
        statuses.add(400)
    responses: dict[str, Any] = {}
    for status in (op.status, *op.also):
        entry: dict[str, Any] = {"description": _REASONS.get(status, "OK")}
        if op.response is not None:
            entry["content"] = _json(refs[(op.response, "serialization")])
        responses[str(status)] = entry
    for status in sorted(statuses):
        model = FieldErrorsOut if status in (400, 422) else ProblemOut
        entry = {"description": _REASONS[status], "content": _json(refs[(model, "serialization")])}
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
            }
        responses[str(status)] = entry
    who = f"**Who may call it:** {op.rule.who}." if op.rule is not None else "Public."
    out: dict[str, Any] = {
        "operationId": op.endpoint,
        "summary": op.summary,
        "description": f"{op.description}\n\n{who}".strip(),
        "tags": [op.tag],
        "parameters": _parameters(op),
        "responses": responses,
    }
    if op.rule is not None:
        out["security"] = [{"bearer": []}]
    else:
        out["security"] = []
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": _json(refs[(op.body, "validation")]),
        }
    return out


@cache
def document() -> dict[str, Any]:
    refs, top = models_json_schema(_models(), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": INTRO},
        "servers": [{"url": "/api/v1"}],
        "tags": [{"name": t} for t in ("customers", "products", "orders", "invoices", "tasks")],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `order-flow users token NAME`",
                }
            },
        },
    }
