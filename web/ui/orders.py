"""Order entry (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("orders", __name__, url_prefix="/orders")


@bp.get("/new")
def new() -> str:
    return "new"
