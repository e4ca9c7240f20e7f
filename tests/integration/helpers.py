"""Small builders shared by the integration tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.store.models import User, UserGroup
from order_flow.store.tables import audit, candidates, instances, outbox, tasks


def add_user(
    app: App, username: str, role: str = "clerk", groups: tuple[str, ...] = ("sales",)
) -> Actor:
    with app.engine.session_factory.begin() as s:
        user = User(username=username, display_name=username, role=role)
        user.groups = [UserGroup(group_name=g) for g in groups]
        s.add(user)
        s.flush()
        return Actor(username, role, frozenset(groups), user.id)


def snapshot(s: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the engine's tables, for before/after comparisons."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in (instances, audit, tasks, candidates, outbox):
        rows = s.execute(select(table).order_by(*table.primary_key.columns)).all()
        out[table.name] = [tuple(r) for r in rows]
    return out


def state_of(app: App, instance_id: int) -> tuple[str, int]:
    with app.engine.session_factory() as s:
        row = app.engine.load(s, instance_id)
        return row.state, row.version
