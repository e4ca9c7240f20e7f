"""The clerk inbox (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


@bp.get("/")
def index() -> str:
    return "inbox"
