"""The job runner's attempt counting: one statement, counted before the step, and a
duplicate delivery that waits for the running job and is then skipped uncounted."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from sqlalchemy import event, select, update

from order_flow.bootstrap import App
from order_flow.engine.steps import JobOutcome, StepContext, _begin_attempt, run_job
from order_flow.store.db import writer
from order_flow.store.tables import outbox
from tests.integration.helpers import add_user


def check_job(app: App) -> tuple[int, int]:
    """An order instance (no order behind it) submitted: (its order.run_checks job, the
    instance)."""
    clerk = add_user(app, "clerk")
    iid = app.engine.start("order", "order", "1", clerk, context={"number": "SO-1"}).instance_id
    return app.engine.fire(iid, "submit", clerk).job_ids[0], iid


def hold(ctx: StepContext) -> None:
    """A stand-in for the checks: put the order on hold."""
    ctx.fire("hold", context_update={"hold_reason": "credit"})


def job(app: App, job_id: int) -> Any:
    with app.engine.session_factory() as s:
        return s.execute(select(outbox).where(outbox.c.id == job_id)).one()


def test_an_attempt_is_one_update_returning_the_count(app: App) -> None:
    job_id, _ = check_job(app)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(app.db, "before_cursor_execute", seen)
    try:
        assert _begin_attempt(app, job_id) == 1
    finally:
        event.remove(app.db, "before_cursor_execute", seen)
    assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == ["UPDATE"]
    assert _begin_attempt(app, job_id) == 2
    assert job(app, job_id).attempts == 2


def test_a_step_that_raises_keeps_its_attempt_and_a_finished_job_counts_no_more(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, _ = check_job(app)

    def broken(_ctx: StepContext) -> None:
        raise RuntimeError("the credit service is down")

    monkeypatch.setitem(app.engine.steps._items, "order.run_checks", broken)
    with pytest.raises(RuntimeError):
        run_job(app, job_id)
    failed = job(app, job_id)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error == "RuntimeError: the credit service is down"
    monkeypatch.setitem(app.engine.steps._items, "order.run_checks", hold)
    assert run_job(app, job_id) == JobOutcome.DONE
    assert run_job(app, job_id) == JobOutcome.SKIPPED  # a redelivered message
    done = job(app, job_id)
    assert (done.status, done.attempts) == ("done", 2)


def test_a_duplicate_delivery_waits_for_the_running_job_then_is_skipped_uncounted(
    app: App,
) -> None:
    job_id, _ = check_job(app)
    assert _begin_attempt(app, job_id) == 1
    results: list[int | None] = []
    # The "running" worker: holds the job row (and on SQLite the write lock) ...
    with writer(app.db).connect() as running:
        running.begin()
        running.execute(update(outbox).where(outbox.c.id == job_id).values(last_error="running"))
        duplicate = threading.Thread(target=lambda: results.append(_begin_attempt(app, job_id)))
        duplicate.start()
        duplicate.join(0.5)
        assert duplicate.is_alive() and results == []  # ... so the duplicate waits
        running.execute(update(outbox).where(outbox.c.id == job_id).values(status="done"))
        running.commit()
    duplicate.join(30)
    assert results == [None]
    assert (job(app, job_id).status, job(app, job_id).attempts) == ("done", 1)


def test_transitions_logs_nothing_at_info_on_a_transition(
    app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, iid = check_job(app)
    monkeypatch.setitem(app.engine.steps._items, "order.run_checks", hold)
    caplog.set_level(logging.INFO)
    assert run_job(app, job_id) == JobOutcome.DONE
    with app.engine.session_factory() as s:
        assert app.engine.load(s, iid).state == "on_hold"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("transitions")] == []
    assert logging.getLogger("transitions").getEffectiveLevel() == logging.WARNING


def test_a_step_reads_its_job_and_instance_once_and_leaves_its_state_in_two_updates(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's joined read serves the step's fire; leaving a step's state with no
    open task ends its jobs in one UPDATE and touches no candidates."""
    job_id, iid = check_job(app)
    monkeypatch.setitem(app.engine.steps._items, "order.run_checks", hold)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(app.db, "before_cursor_execute", seen)
    try:
        assert run_job(app, job_id) == JobOutcome.DONE
    finally:
        event.remove(app.db, "before_cursor_execute", seen)
    reads = [s for s in statements if s.startswith("SELECT") and "workflow_instances" in s]
    assert len(reads) == 1 and "outbox" in reads[0]
    assert [s for s in statements if s.startswith("UPDATE task_candidates")] == []
    assert len([s for s in statements if s.startswith("UPDATE outbox")]) == 2  # attempt, end
    with app.engine.session_factory() as s:
        assert app.engine.load(s, iid).state == "on_hold"
        assert s.scalar(select(outbox.c.status).where(outbox.c.id == job_id)) == "done"


def test_leaving_a_state_ends_the_firing_job_and_cancels_the_instances_other_jobs(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, iid = check_job(app)
    with app.engine.uow() as uow:  # a side job of the same state (as enqueue_in writes)
        side = app.engine.enqueue_in(uow, iid, "order.run_checks", {}, "side-1")
        uow.commit()
    monkeypatch.setitem(app.engine.steps._items, "order.run_checks", hold)
    assert run_job(app, job_id) == JobOutcome.DONE
    assert (job(app, job_id).status, job(app, side or 0).status) == ("done", "cancelled")
    assert job(app, job_id).finished_at == job(app, side or 0).finished_at
