"""Races between sessions: the database decides, exactly one wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM
from order_flow.errors import ConflictError, OrderFlowError, TaskStateError
from order_flow.store.tables import audit, tasks
from tests.integration.helpers import add_user, state_of


def race(n: int, action: Callable[[int], object]) -> list[object]:
    """Run ``action(i)`` in ``n`` threads released at the same moment."""
    barrier = threading.Barrier(n)

    def run(i: int) -> object:
        barrier.wait()
        try:
            return action(i)
        except OrderFlowError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_two_sessions_firing_on_one_instance_one_commits_and_the_other_conflicts(
    app: App,
) -> None:
    clerk = add_user(app, "alice")
    started = app.engine.start("order", "order", "1", clerk, context={"number": "SO-1"})
    instance_id = started.instance_id
    _, seen_version = state_of(app, instance_id)  # both clerks looked at version 1
    triggers = ["submit", "cancel"]
    results = race(
        2,
        lambda i: app.engine.fire(instance_id, triggers[i], clerk, expected_version=seen_version),
    )
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1 and len(conflicts) == 1, results
    state, version = state_of(app, instance_id)
    assert version == 2 and state in ("submitted", "cancelled")
    with app.engine.session_factory() as s:
        assert s.scalar(select(func.count()).where(audit.c.kind == "transition")) == 1


def test_twenty_threads_claim_one_task_and_exactly_one_wins(app: App) -> None:
    creator = add_user(app, "creator")
    clerks = [add_user(app, f"clerk{i}") for i in range(20)]
    started = app.engine.start("order", "order", "2", creator, context={"number": "SO-2"})
    app.engine.fire(started.instance_id, "submit", creator)
    held = app.engine.fire(started.instance_id, "hold", SYSTEM)
    task_id = held.task_ids[0]
    results = race(20, lambda i: app.tasks.claim(task_id, clerks[i]))
    winners = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, TaskStateError)]
    assert len(winners) == 1 and len(losers) == 19, results
    with app.engine.session_factory() as s:
        assert s.scalar(select(tasks.c.assignee_id)) == clerks[winners[0]].user_id
        claims = s.scalar(select(func.count()).where(audit.c.kind == "claim"))
    assert claims == 1
