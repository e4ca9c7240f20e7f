"""The blueprint and its route table: each operation declares its input and output
models, who may call it and which errors it answers with; the OpenAPI document is
generated from the same table (openapi.py), so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from order_flow.engine.actors import Actor
from order_flow.errors import NotFoundError, OrderFlowError
from web.api.auth import Rule, authenticate
from web.api.errors import ApiError, FieldErrors, error_response, json_response, pydantic_errors
from web.api.schemas import MAX_ID

bp = Blueprint("api", __name__, url_prefix="/api/v1")

M = TypeVar("M", bound=BaseModel)
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Header:
    """A request header an operation reads (documented as an OpenAPI parameter)."""

    name: str
    description: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    endpoint: str
    summary: str
    tag: str
    rule: Rule | None  # None: public, no token needed
    description: str = ""
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses (200 for an idempotent replay)
    errors: tuple[int, ...] = ()
    headers: tuple[Header, ...] = ()

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)


OPERATIONS: list[Operation] = []


@dataclass
class Call:
    """What a view gets: the actor, the validated body and query."""

    actor: Actor
    body: Any = None
    query: Any = None
    headers: Headers = field(default_factory=Headers)


@dataclass(frozen=True)
class Result:
    payload: BaseModel
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


View = Callable[..., BaseModel | Result]


def operation(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    rule: Rule | None,
    response: type[BaseModel] | None,
    status: int = 200,
    description: str = "",
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    also: tuple[int, ...] = (),
    errors: tuple[int, ...] = (),
    headers: tuple[Header, ...] = (),
) -> Callable[[View], View]:
    """Declare an operation and register its view on the blueprint."""

    def decorator(fn: View) -> View:
        op = Operation(
            method.upper(), path, fn.__name__, summary, tag, rule, description, body,
            body_required, query, response, status, also, errors, headers,
        )  # fmt: skip
        OPERATIONS.append(op)

        def view(**kwargs: Any) -> Response:
            for name in op.path_params:
                if not 1 <= kwargs[name] <= MAX_ID:
                    raise NotFoundError(f"no such {name.removesuffix('_id')} {kwargs[name]}")
            actor = authenticate() if op.rule is not None else _NOBODY
            if op.rule is not None:
                op.rule.check(actor)
            call = Call(actor, _parse_body(op), _parse_query(op), request.headers)
            result = fn(call, **kwargs)
            if isinstance(result, BaseModel):
                result = Result(result)
            return json_response(
                result.payload.model_dump(mode="json"), result.status or op.status, result.headers
            )

        rule_path = _PARAM.sub(r"<int:\1>", path)
        bp.add_url_rule(rule_path, endpoint=fn.__name__, view_func=view, methods=[op.method])
        return fn

    return decorator


_NOBODY = Actor(name="anonymous", role="anonymous")


def _parse_body(op: Operation) -> Any:
    if op.body is None:
        return None
    raw = request.get_data(cache=True)
    if not raw.strip() and not op.body_required:
        return op.body()
    if not raw.strip():
        raise FieldErrors({"body": "a JSON object is required"}, 400)
    try:
        parsed = op.body.model_validate_json(raw)
    except PydanticError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise FieldErrors({"body": "malformed JSON"}, 400) from None
        raise FieldErrors(pydantic_errors(exc)) from None
    _check_text(parsed.model_dump(), "")
    return parsed


def _parse_query(op: Operation) -> Any:
    if op.query is None:
        if request.args:
            raise FieldErrors({name: "unknown parameter" for name in request.args})
        return None
    try:
        parsed = op.query.model_validate(request.args.to_dict(flat=True))
    except PydanticError as exc:
        raise FieldErrors(pydantic_errors(exc)) from None
    _check_text(parsed.model_dump(), "")
    return parsed


def _check_text(value: Any, path: str) -> None:
    """Refuse NUL characters and lone surrogates: no database stores them."""
    errors: dict[str, str] = {}

    def walk(v: Any, at: str) -> None:
        if isinstance(v, str):
            if "\x00" in v:
                errors.setdefault(at or "body", "must not contain NUL characters")
            else:
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    errors.setdefault(at or "body", "not valid Unicode text")
        elif isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, f"{at}.{k}" if at else str(k))
        elif isinstance(v, list | tuple):
            for i, item in enumerate(v):
                walk(item, f"{at}[{i}]")

    walk(value, path)
    if errors:
        raise FieldErrors(errors)


# -- errors and unknown paths ------------------------------------------------------


@bp.errorhandler(OrderFlowError)
@bp.errorhandler(ApiError)
@bp.errorhandler(FieldErrors)
@bp.errorhandler(HTTPException)
def _handle(exc: Exception) -> Response:
    return error_response(exc)


_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route("/", methods=_ANY, endpoint="unknown_root")
@bp.route("/<path:rest>", methods=_ANY, endpoint="unknown")
def _unknown(rest: str = "") -> Response:
    """JSON 404 (or 405) for any path under /api/v1 no operation serves."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _ANY:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint not in ("api.unknown", "api.unknown_root"):
            allowed.append(method)
    if allowed:
        exc: HTTPException = MethodNotAllowed(allowed)
        response = error_response(exc)
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(NotFound(f"no API operation at {request.path}"))
