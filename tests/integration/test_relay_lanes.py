"""The outbox relay and the priority lanes, on SQLite and PostgreSQL.

An urgent job left for the relay (its after-commit publish failed, a retry fell due)
must not wait behind a backlog of older normal jobs, and a flood of urgent jobs must
not hold the normal ones back either: each side has a budget of its own per round.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select

from order_flow.bootstrap import App
from order_flow.engine.core import queue_for
from order_flow.engine.outbox import relay_once
from order_flow.engine.publisher import JobRef, RecordingPublisher
from order_flow.store.tables import outbox
from tests.integration.helpers import add_user


class AcceptingPublisher(RecordingPublisher):
    """Keeps what it was asked to publish and says it was sent (rows become published)."""

    def publish(self, jobs: list[JobRef]) -> bool:
        super().publish(jobs)
        return True


@pytest.fixture
def publisher() -> RecordingPublisher:
    return AcceptingPublisher()


def pending_jobs(
    app: App, priority: str, n: int, age_s: int, step: str = "order.run_checks"
) -> None:
    """``n`` due pending jobs of one new instance of ``priority``, the oldest ``age_s`` old."""
    clerk = add_user(app, f"clerk-{priority}-{age_s}")
    started = app.engine.start("order", "order", f"{priority}-{age_s}", clerk, priority=priority)
    rank = 0 if priority == "urgent" else 2
    now = app.engine.clock()
    rows = [
        dict(
            instance_id=started.instance_id,
            state="submitted",
            step=step,
            queue=queue_for(step, rank),
            idempotency_key=f"{priority}-{age_s}-{i}",
            status="pending",
            attempts=0,
            available_at=now - timedelta(seconds=age_s - i),
            created_at=now,
            payload={},
        )
        for i in range(n)
    ]
    with app.engine.session_factory.begin() as s:
        s.execute(insert(outbox), rows)


def published_queues(publisher: RecordingPublisher) -> list[str]:
    return [j.queue for j in publisher.published]


def test_an_urgent_job_is_relayed_in_the_first_round_behind_any_backlog(
    app: App, publisher: RecordingPublisher
) -> None:
    pending_jobs(app, "normal", 120, age_s=3600)
    pending_jobs(app, "urgent", 1, age_s=1)  # the newest job of all

    assert relay_once(app, publisher, limit=50) == 51
    queues = published_queues(publisher)
    assert queues[0] == "urgent"  # sent first
    assert queues.count("default") == 50  # the oldest 50 normal ones, as before
    with app.engine.session_factory() as s:
        left = s.scalar(select(func.count()).where(outbox.c.status == "pending"))
    assert left == 70


def test_a_flood_of_urgent_jobs_leaves_the_normal_ones_their_own_budget(
    app: App, publisher: RecordingPublisher
) -> None:
    pending_jobs(app, "normal", 5, age_s=3600)  # the oldest
    pending_jobs(app, "urgent", 120, age_s=600)
    pending_jobs(app, "urgent", 3, age_s=300, step="invoice.issue")

    assert relay_once(app, publisher, limit=50) == 55
    queues = published_queues(publisher)
    assert queues[:50] == ["urgent"] * 50  # oldest urgent first, lanes before the rest
    assert queues[50:] == ["default"] * 5
    assert relay_once(app, publisher, limit=50) == 50
    assert relay_once(app, publisher, limit=50) == 23
    assert published_queues(publisher)[-3:] == ["urgent.pdf"] * 3
    assert relay_once(app, publisher, limit=50) == 0


def test_the_urgent_batch_is_committed_before_the_normal_one_is_sent(app: App) -> None:
    """A worker that receives an urgent job locks its row; the relay must not hold that
    lock while it sends the normal batch."""
    pending_jobs(app, "normal", 30, age_s=3600)
    pending_jobs(app, "urgent", 2, age_s=1)
    seen: list[dict[str, int]] = []
    plain = create_engine(app.settings.database_url)  # a reader (no BEGIN IMMEDIATE)

    class Watching(AcceptingPublisher):
        def publish(self, jobs: list[JobRef]) -> bool:
            with plain.connect() as conn:  # another connection: committed rows only
                rows = conn.execute(
                    select(outbox.c.queue, func.count())
                    .where(outbox.c.status == "published")
                    .group_by(outbox.c.queue)
                ).all()
            seen.append({str(q): int(n) for q, n in rows})
            return super().publish(jobs)

    try:
        assert relay_once(app, Watching(), limit=50) == 32
    finally:
        plain.dispose()
    assert seen == [{}, {"urgent": 2}]  # before the urgent batch, before the normal one
