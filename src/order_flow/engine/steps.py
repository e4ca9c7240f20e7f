"""Running one outbox job: the body of every Celery task, and of the test drain.

A job runs at most once to completion: the runner takes it in a transaction,
skips it when it is already finished or its instance has moved on, runs the
step body, and commits the body's writes together with the job's end. A second
delivery of the same message finds the job finished and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from order_flow.engine.actors import SYSTEM
from order_flow.engine.core import INSTANCE_COLUMNS, FireResult
from order_flow.engine.uow import UnitOfWork
from order_flow.store.tables import instances, outbox

if TYPE_CHECKING:
    from order_flow.bootstrap import App

log = logging.getLogger(__name__)


class JobOutcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    DEFERRED = "deferred"


@dataclass
class StepContext:
    """What a step body gets. It writes through ``uow`` and moves the instance with fire()."""

    app: App
    uow: UnitOfWork
    job_id: int
    step: str
    instance: Any
    attempt: int
    payload: dict[str, Any] = field(default_factory=dict)
    fired: FireResult | None = None
    defer_until: datetime | None = None
    #: The job's idempotency key: the same for every delivery of the job.
    key: str = ""

    def fire(self, trigger: str, **kwargs: Any) -> FireResult:
        """Fire a system trigger on the job's instance; it also closes this job."""
        # The runner read the instance in this transaction: the first fire reuses it
        # (its optimistic lock still catches a change since).
        loaded = self.instance if self.fired is None else None
        self.fired = self.app.engine.fire_in(
            self.uow, self.instance.id, trigger, SYSTEM, job_id=self.job_id,
            loaded_row=loaded, **kwargs,
        )  # fmt: skip
        return self.fired

    def defer(self, until: datetime) -> None:
        """Run this job again at ``until`` (for example: waiting for stock)."""
        self.defer_until = until


_JOB_COLUMNS = tuple(
    c.label(f"job_{c.key}")
    for c in (
        outbox.c.id, outbox.c.step, outbox.c.state, outbox.c.status, outbox.c.payload,
        outbox.c.idempotency_key,
    )
)  # fmt: skip


def run_job(app: App, job_id: int) -> JobOutcome:
    """Run one job; exceptions propagate after the attempt and error are recorded."""
    engine = app.engine
    attempt = _begin_attempt(app, job_id)
    if attempt is None:
        return JobOutcome.SKIPPED
    try:
        with engine.uow() as uow:
            s = uow.session
            # The job row, locked, and its instance in the same round trip.
            found = s.execute(
                select(*_JOB_COLUMNS, *INSTANCE_COLUMNS)
                .join_from(outbox, instances, instances.c.id == outbox.c.instance_id)
                .where(outbox.c.id == job_id)
                .with_for_update(of=outbox)
            ).one()
            values = found._mapping
            job = SimpleNamespace(**{c.key[4:]: values[c.key] for c in _JOB_COLUMNS})
            if job.status not in ("pending", "published"):
                return JobOutcome.SKIPPED  # finished while we waited for the lock
            row = SimpleNamespace(**{c.key: values[c.key] for c in INSTANCE_COLUMNS})
            if row.state != job.state:
                _finish(s, job_id, "cancelled", engine.clock())
                uow.commit()
                return JobOutcome.SKIPPED
            ctx = StepContext(
                app, uow, job_id, job.step, row, attempt, dict(job.payload or {}),
                key=job.idempotency_key,
            )  # fmt: skip
            engine.steps[job.step](ctx)
            now = engine.clock()
            if ctx.defer_until is not None and ctx.fired is None:
                s.execute(
                    update(outbox)
                    .where(outbox.c.id == job_id)
                    .values(status="pending", available_at=ctx.defer_until, published_at=None)
                )
                outcome = JobOutcome.DEFERRED
            else:
                if ctx.fired is None:
                    _finish(s, job_id, "done", now)
                outcome = JobOutcome.DONE
            uow.commit()
            return outcome
    except Exception as exc:
        record_error(app, job_id, exc)
        raise


def _begin_attempt(app: App, job_id: int) -> int | None:
    """Count the attempt in its own transaction, so a crash mid-step still counts.

    One ``UPDATE ... RETURNING`` (a single round trip): it waits for the job row's
    lock, which another worker running the job holds for the whole step, and then
    re-checks the status on the committed row, so a duplicate delivery finds the
    job finished and is skipped without using up an attempt.
    """
    with app.engine.uow() as uow:
        s = uow.session
        open_job = (outbox.c.id == job_id) & outbox.c.status.in_(("pending", "published"))
        attempts = s.scalar(
            update(outbox)
            .where(open_job)
            .values(attempts=outbox.c.attempts + 1)
            .returning(outbox.c.attempts)
        )
        if attempts is None:
            return None
        uow.commit()
        return int(attempts)


def record_error(app: App, job_id: int, exc: BaseException) -> None:
    with app.engine.uow() as uow:
        uow.session.execute(
            update(outbox)
            .where(outbox.c.id == job_id)
            .values(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        )
        uow.commit()


def _finish(s: Any, job_id: int, status: str, now: datetime) -> None:
    s.execute(update(outbox).where(outbox.c.id == job_id).values(status=status, finished_at=now))


def pending_job_ids(app: App, limit: int = 100) -> list[int]:
    """Jobs due now, oldest first (urgent instances first)."""
    now = app.engine.clock()
    with app.engine.session_factory() as s:
        rows = s.execute(
            select(outbox.c.id)
            .join(instances, instances.c.id == outbox.c.instance_id)
            .where(outbox.c.status.in_(("pending", "published")), outbox.c.available_at <= now)
            .order_by(instances.c.priority, outbox.c.id)
            .limit(limit)
        ).scalars()
        return list(rows)


def drain(app: App, max_jobs: int = 10_000) -> int:
    """Run due jobs in this process until none is left (tests, embedded demos)."""
    ran = 0
    while ran < max_jobs:
        ids = pending_job_ids(app)
        if not ids:
            return ran
        for job_id in ids:
            run_job(app, job_id)
            ran += 1
    return ran
