"""Errors as JSON: one shape for field errors, one for everything else.

Field errors (422, and 400 for a body that is not JSON) read
``{"errors": [{"field": "lines[0].qty", "message": "..."}]}``, one entry per field,
whether pydantic or a service found them. Other errors read
``{"error": "not_found", "message": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response
from pydantic import ValidationError as PydanticError
from werkzeug.exceptions import HTTPException

from order_flow.errors import (
    ConflictError,
    NotFoundError,
    OrderFlowError,
    PermissionDeniedError,
    TaskStateError,
    TransitionNotAllowedError,
    ValidationError,
)

#: Service errors and the status each one answers with.
STATUS_OF: tuple[tuple[type[OrderFlowError], int, str], ...] = (
    (ValidationError, 422, "invalid"),
    (NotFoundError, 404, "not_found"),
    (PermissionDeniedError, 403, "forbidden"),
    (ConflictError, 409, "conflict"),
    (TransitionNotAllowedError, 409, "transition_not_allowed"),
    (TaskStateError, 409, "task_state"),
)
REALM = 'Bearer realm="order_flow"'


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class ApiError(Exception):
    """An error the API answers with directly (401, 400, 404 of an unknown path...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return json_response(
            {"error": self.code, "message": self.message}, self.status, self.headers
        )


class FieldErrors(Exception):
    """Field errors found by the API layer (pydantic, text checks); 422 unless told."""

    def __init__(self, errors: Mapping[str, str], status: int = 422) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors, self.status = dict(errors), status

    def response(self) -> Response:
        return field_errors_response(self.errors, self.status)


def field_errors_response(errors: Mapping[str, str], status: int = 422) -> Response:
    items = [{"field": name, "message": message} for name, message in errors.items()]
    return json_response({"errors": items}, status)


def field_name(loc: Iterable[int | str], prefix: str = "") -> str:
    """("lines", 0, "qty") -> "lines[0].qty"."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def pydantic_errors(exc: PydanticError, prefix: str = "") -> dict[str, str]:
    """One message per field, the first pydantic reports."""
    errors: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        name = field_name(err["loc"], prefix)
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required"
        else:
            message = str(err["msg"])
        errors.setdefault(name, message)
    return errors


def error_response(exc: Exception) -> Response:
    """The JSON answer to any exception a view lets out (re-raises the unknown ones)."""
    if isinstance(exc, ApiError | FieldErrors):
        return exc.response()
    if isinstance(exc, ValidationError):
        return field_errors_response(exc.errors or {"body": str(exc)}, 422)
    for kind, status, code in STATUS_OF:
        if isinstance(exc, kind):
            return json_response({"error": code, "message": str(exc)}, status)
    if isinstance(exc, HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return json_response(
            {"error": code, "message": exc.description or exc.name}, exc.code or 500
        )
    raise exc
