"""Timers kept in the database and scanned by beat: the SLA ladder, stale jobs.

The ladder for an open human task past its due time, one rung per scan once the
previous rung is ``settings.sla_ladder_step_minutes`` old: 1) remind the assignee,
2) put the task back in its groups' queue, 3) hand it to the supervisors (top
priority). Every rung is an audit event, so the task page and the supervisor
console show it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from order_flow.engine.actors import SYSTEM
from order_flow.store.tables import candidates, rowcount, tasks

if TYPE_CHECKING:
    from order_flow.bootstrap import App

RUNGS = {1: "sla_remind", 2: "sla_requeue", 3: "sla_escalate"}


def escalate_overdue(app: App, batch: int = 500) -> int:
    """Move overdue open tasks one rung up the ladder; returns how many moved."""
    engine = app.engine
    now = engine.clock()
    step = timedelta(minutes=app.settings.sla_ladder_step_minutes)
    moved = 0
    with engine.uow() as uow:
        s = uow.session
        rows = s.execute(
            select(
                tasks.c.id,
                tasks.c.instance_id,
                tasks.c.state,
                tasks.c.escalation,
                tasks.c.escalated_at,
                tasks.c.assignee_id,
            )
            .where(
                tasks.c.status == "open",
                tasks.c.kind == "human",
                tasks.c.due_at < now,
                tasks.c.escalation < 3,
            )
            .order_by(tasks.c.due_at)
            .limit(batch)
        ).all()
        for r in rows:
            if r.escalated_at is not None and now - r.escalated_at < step:
                continue
            rung = r.escalation + 1
            values: dict[str, object] = {"escalation": rung, "escalated_at": now}
            if rung == 2 and r.assignee_id is not None:
                values.update(assignee_id=None, claimed_at=None)
            if rung == 3:
                values["priority"] = 0
            changed = rowcount(
                s.execute(
                    update(tasks)
                    .where(
                        tasks.c.id == r.id,
                        tasks.c.status == "open",
                        tasks.c.escalation == r.escalation,
                    )
                    .values(**values)
                )
            )
            if changed != 1:
                continue
            if rung == 2 and r.assignee_id is not None:
                s.execute(
                    update(candidates).where(candidates.c.task_id == r.id).values(unclaimed=True)
                )
            if rung == 3:
                s.execute(update(candidates).where(candidates.c.task_id == r.id).values(priority=0))
            engine.audit(
                s,
                r.instance_id,
                RUNGS[rung],
                None,
                r.state,
                r.state,
                SYSTEM,
                None,
                now,
                task_id=r.id,
                data={"assignee_id": r.assignee_id},
            )
            moved += 1
        uow.commit()
    return moved


def run_timers(app: App) -> int:
    """Everything beat runs every minute; returns the number of things changed."""
    from order_flow.services.delegation import DelegationService  # services import the engine

    changed = escalate_overdue(app)
    changed += DelegationService(app).apply_delegations()
    release = getattr(app.catalog, "release_stale", None)
    if release is not None:
        hours = app.settings.reservation_stale_hours
        changed += int(release(app.engine.clock() - timedelta(hours=hours)))
    return changed
