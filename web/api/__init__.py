"""The JSON API under /api/v1, described by /api/v1/openapi.json.

``bp`` is the one blueprint; the modules below add their operations to it on
import. It authenticates by bearer token only (never the session cookie), so the
UI's CSRF protection should exempt it: ``csrf.exempt(web.api.bp)``.
"""

from __future__ import annotations

from flask import Flask, Response

from web.api import customers, imports, invoices, orders, tasks  # noqa: F401 - they register routes
from web.api.errors import json_response
from web.api.openapi import document
from web.api.routing import bp

__all__ = ["bp", "register"]


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document (public)."""
    return json_response(document())


def register(app: Flask) -> None:
    """Register the API blueprint on ``app``."""
    app.register_blueprint(bp)
