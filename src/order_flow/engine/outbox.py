"""The outbox relay, retry backoff, and incidents for steps that keep failing.

Retries are timers in the database, not Celery countdowns: a failed job goes back
to ``pending`` with ``available_at`` in the future, and the relay publishes it
again when it is due. After ``settings.job_max_attempts``, or at once for bad data, the job
becomes ``failed`` and an incident task appears in the problem queue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from order_flow.engine.actors import Actor
from order_flow.engine.core import URGENT_LANES
from order_flow.engine.publisher import JobRef, Publisher
from order_flow.errors import (
    NotFoundError,
    PermissionDeniedError,
    TaskStateError,
    ValidationError,
)
from order_flow.store.tables import candidates, outbox, rowcount, tasks

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: First retry delay; doubles per attempt, with +/-25 % jitter, capped.
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=5)
#: Groups that see the incidents of each workflow.
INCIDENT_GROUPS = {"order": ("sales",), "invoice": ("finance",)}


class StepDataError(Exception):
    """A step met data it cannot work with; retrying will not help (no backoff)."""


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    base = min(BACKOFF_BASE * (2 ** max(attempt - 1, 0)), BACKOFF_CAP)
    jitter = (rng or random).uniform(0.75, 1.25)
    return base * jitter


def republish_after(app: App) -> timedelta:
    """A published job older than this is taken as lost (settings.outbox_republish_after_s)."""
    return timedelta(seconds=app.settings.outbox_republish_after_s)


def relay_once(app: App, publisher: Publisher, limit: int = 500) -> int:
    """Publish due pending jobs and re-publish lost ones; returns how many were sent.

    Two batches per round, each oldest first and in a transaction of its own: up to
    ``limit`` jobs of the urgent lanes, then up to ``limit`` of the other queues. An
    urgent job so never waits behind a backlog of normal ones, a flood of urgent jobs
    never holds the others back, and an urgent job's row is committed as published
    (so the worker that receives it does not wait for the lock) before the normal
    batch is sent. On PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED, so
    several relays never send the same row in the same round.
    """
    urgent = list(URGENT_LANES.values())
    sent = _relay_batch(app, publisher, outbox.c.queue.in_(urgent), limit)
    return sent + _relay_batch(app, publisher, outbox.c.queue.not_in(urgent), limit)


def _relay_batch(app: App, publisher: Publisher, lanes: Any, limit: int) -> int:
    engine = app.engine
    now = engine.clock()
    lost_before = now - republish_after(app)
    with engine.uow() as uow:
        s = uow.session
        due = (outbox.c.status == "pending") & (outbox.c.available_at <= now)
        lost = (outbox.c.status == "published") & (outbox.c.published_at < lost_before)
        stmt = (
            select(
                outbox.c.id,
                outbox.c.instance_id,
                outbox.c.step,
                outbox.c.queue,
                outbox.c.idempotency_key,
            )
            .where(due | lost, lanes)
            .order_by(outbox.c.available_at, outbox.c.id)
            .limit(limit)
        )
        if s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=outbox)
        rows = s.execute(stmt).all()
        if not rows:
            return 0
        jobs = [JobRef(r.id, r.instance_id, r.step, r.queue, r.idempotency_key) for r in rows]
        if not publisher.publish(jobs):  # raises when the broker is down
            return 0
        s.execute(
            update(outbox)
            .where(outbox.c.id.in_([j.id for j in jobs]))
            .values(status="published", published_at=now)
        )
        uow.commit()
        return len(jobs)


@dataclass(frozen=True)
class FailureOutcome:
    job_id: int
    retry_at: datetime | None
    incident_task_id: int | None


def handle_failure(
    app: App, job_id: int, exc: BaseException, max_attempts: int | None = None
) -> FailureOutcome:
    """After a failed attempt: schedule a retry, or open an incident."""
    engine = app.engine
    now = engine.clock()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    with engine.uow() as uow:
        s = uow.session
        job = s.execute(select(outbox).where(outbox.c.id == job_id).with_for_update()).one()
        if job.status not in ("pending", "published"):
            return FailureOutcome(job_id, None, None)
        history = list((job.payload or {}).get("errors", []))[-9:]
        history.append({"attempt": job.attempts, "at": now.isoformat(), "error": error})
        payload = {**(job.payload or {}), "errors": history}
        limit = app.settings.job_max_attempts if max_attempts is None else max_attempts
        if isinstance(exc, StepDataError) or job.attempts >= limit:
            s.execute(
                update(outbox)
                .where(outbox.c.id == job_id)
                .values(status="failed", last_error=error, payload=payload, finished_at=now)
            )
            task_id = _open_incident(app, s, job, error, history, now)
            uow.commit()
            return FailureOutcome(job_id, None, task_id)
        retry_at = now + backoff(job.attempts)
        s.execute(
            update(outbox)
            .where(outbox.c.id == job_id)
            .values(
                status="pending",
                available_at=retry_at,
                published_at=None,
                last_error=error,
                payload=payload,
            )
        )
        uow.commit()
        return FailureOutcome(job_id, retry_at, None)


def _open_incident(
    app: App, s: Any, job: Any, error: str, history: list[dict[str, Any]], now: datetime
) -> int:
    inst = app.engine.load(s, job.instance_id)
    groups = INCIDENT_GROUPS.get(inst.workflow, ("sales",))
    title = f"步骤 {job.step} 失败 (#{inst.subject_id}): {error}"[:255]
    task_id = s.execute(
        insert(tasks).returning(tasks.c.id),
        dict(
            instance_id=inst.id,
            state=inst.state,
            kind="incident",
            title=title,
            status="open",
            priority=0,
            due_at=now,
            outcomes={"retry": "", "resolve": ""},
            data={"job_id": job.id, "step": job.step, "error": error, "attempts": history},
            created_at=now,
        ),
    ).scalar_one()
    s.execute(
        insert(candidates),
        [
            dict(task_id=task_id, group_name=g, priority=0, due_at=now, unclaimed=True)
            for g in groups
        ],
    )
    app.engine.audit(
        s,
        inst.id,
        "incident",
        None,
        inst.state,
        inst.state,
        Actor("system", "system"),
        error,
        now,
        task_id=task_id,
        data={"job_id": job.id, "step": job.step},
    )
    return int(task_id)


def _incident(s: Any, task_id: int) -> Any:
    row = s.execute(
        select(tasks).where(tasks.c.id == task_id, tasks.c.kind == "incident").with_for_update()
    ).first()
    if row is None:
        raise NotFoundError(f"incident {task_id} does not exist")
    if row.status != "open":
        raise TaskStateError(f"incident {task_id} is already {row.status}")
    return row


def retry_incident(app: App, task_id: int, actor: Actor, comment: str | None = None) -> int:
    """Close the incident and put its job back in the queue; returns the job id."""
    engine = app.engine
    with engine.uow() as uow:
        s = uow.session
        row = _incident(s, task_id)
        job_id = int((row.data or {})["job_id"])
        job = s.execute(select(outbox).where(outbox.c.id == job_id)).one()
        inst = engine.load(s, row.instance_id)
        if inst.state != job.state:
            raise TaskStateError(f"the instance left '{job.state}'; resolve the incident instead")
        now = engine.clock()
        _close(s, task_id, "retry", actor, now)
        s.execute(
            update(outbox)
            .where(outbox.c.id == job_id)
            .values(
                status="pending", attempts=0, available_at=now, published_at=None, finished_at=None
            )
        )
        engine.audit(
            s,
            row.instance_id,
            "incident_retry",
            None,
            row.state,
            row.state,
            actor,
            comment,
            now,
            task_id=task_id,
            data={"job_id": job_id},
        )
        uow.jobs.append(JobRef(job_id, job.instance_id, job.step, job.queue, job.idempotency_key))
        uow.commit()
        return job_id


def resolve_incident(app: App, task_id: int, actor: Actor, comment: str) -> None:
    """Close the incident without retrying (someone handled it by hand)."""
    if not (comment or "").strip():
        raise ValidationError({"comment": "say how the incident was resolved"})
    engine = app.engine
    with engine.uow() as uow:
        s = uow.session
        row = _incident(s, task_id)
        now = engine.clock()
        _close(s, task_id, "resolve", actor, now)
        engine.audit(
            s,
            row.instance_id,
            "incident_resolve",
            None,
            row.state,
            row.state,
            actor,
            comment,
            now,
            task_id=task_id,
        )
        uow.commit()


def _close(s: Any, task_id: int, outcome: str, actor: Actor, now: datetime) -> None:
    if actor.is_system:
        raise PermissionDeniedError("a person must retry or resolve an incident")
    s.execute(update(candidates).where(candidates.c.task_id == task_id).values(unclaimed=False))
    done = rowcount(
        s.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.status == "open")
            .values(status="completed", outcome=outcome, closed_at=now, closed_by=actor.name)
        )
    )
    if done != 1:
        raise TaskStateError(f"incident {task_id} changed meanwhile")


def open_incidents(app: App) -> list[Any]:
    with app.engine.session_factory() as s:
        return list(
            s.execute(
                select(
                    tasks.c.id, tasks.c.title, tasks.c.instance_id, tasks.c.data, tasks.c.created_at
                )
                .where(tasks.c.kind == "incident", tasks.c.status == "open")
                .order_by(tasks.c.id)
            ).all()
        )


def outbox_status(app: App) -> dict[str, Any]:
    """Counts per status, and the age of the oldest due pending job (outbox lag)."""
    now = app.engine.clock()
    with app.engine.session_factory() as s:
        counts: dict[str, int] = dict(
            s.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        )
        oldest = s.scalar(
            select(func.min(outbox.c.available_at)).where(
                outbox.c.status == "pending", outbox.c.available_at <= now
            )
        )
    lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    return {"counts": {str(k): int(v) for k, v in counts.items()}, "lag_seconds": lag}
