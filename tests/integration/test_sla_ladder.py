"""The SLA ladder: an overdue task is reminded, put back in its queue, then escalated."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM
from order_flow.engine.timers import escalate_overdue
from order_flow.store.tables import audit, candidates, tasks
from tests.integration.helpers import add_user


class Clock:
    def __init__(self, app: App) -> None:
        self.now: datetime = app.engine.clock()
        app.engine.clock = lambda: self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def held_task(app: App) -> tuple[int, int]:
    clerk = add_user(app, "alice")
    bob = add_user(app, "bob")
    started = app.engine.start("order", "order", "1", clerk, context={"number": "SO-1"})
    app.engine.fire(started.instance_id, "submit", clerk)
    task_id = app.engine.fire(started.instance_id, "hold", SYSTEM).task_ids[0]
    app.tasks.claim(task_id, bob)
    return task_id, bob.user_id or 0


def ladder(app: App, task_id: int) -> tuple[int, int | None, int, bool]:
    with app.engine.session_factory() as s:
        row = s.execute(
            select(tasks.c.escalation, tasks.c.assignee_id, tasks.c.priority).where(
                tasks.c.id == task_id
            )
        ).one()
        unclaimed = s.scalar(select(candidates.c.unclaimed).where(candidates.c.task_id == task_id))
    return row.escalation, row.assignee_id, row.priority, bool(unclaimed)


def test_a_task_within_its_sla_is_left_alone(app: App) -> None:
    task_id, bob = held_task(app)
    assert escalate_overdue(app) == 0
    assert ladder(app, task_id) == (0, bob, 2, False)


def test_an_overdue_task_climbs_one_rung_per_step_and_every_rung_is_audited(app: App) -> None:
    clock = Clock(app)
    task_id, bob = held_task(app)
    clock.advance(days=7)  # far past the 4 business hours of on_hold
    assert escalate_overdue(app) == 1
    assert ladder(app, task_id) == (1, bob, 2, False)  # the assignee is reminded
    assert escalate_overdue(app) == 0  # the next rung waits for the ladder step
    clock.advance(minutes=app.settings.sla_ladder_step_minutes)
    assert escalate_overdue(app) == 1
    assert ladder(app, task_id) == (2, None, 2, True)  # back in the group's queue
    clock.advance(minutes=app.settings.sla_ladder_step_minutes)
    assert escalate_overdue(app) == 1
    assert ladder(app, task_id) == (3, None, 0, True)  # top priority for the supervisors
    clock.advance(days=1)
    assert escalate_overdue(app) == 0  # the ladder ends there
    with app.engine.session_factory() as s:
        kinds = list(
            s.scalars(select(audit.c.kind).where(audit.c.task_id == task_id).order_by(audit.c.id))
        )
    assert kinds == ["claim", "sla_remind", "sla_requeue", "sla_escalate"]


def test_a_closed_task_never_escalates(app: App) -> None:
    clock = Clock(app)
    task_id, _ = held_task(app)
    with app.engine.session_factory() as s:
        instance_id = s.scalar(select(tasks.c.instance_id).where(tasks.c.id == task_id))
    app.engine.fire(instance_id or 0, "recheck", add_user(app, "carol"))
    clock.advance(days=7)
    assert escalate_overdue(app) == 0
