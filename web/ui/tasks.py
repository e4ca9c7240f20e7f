"""The task page (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


@bp.get("/<int:task_id>")
def show(task_id: int) -> str:
    return "task"


@bp.post("/<int:task_id>/claim")
def claim(task_id: int) -> str:
    return "claim"
