"""Starting instances and firing triggers, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM
from order_flow.engine.publisher import RecordingPublisher
from order_flow.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TransitionNotAllowedError,
)
from order_flow.store.tables import audit, outbox, tasks
from tests.integration.helpers import add_user, snapshot, state_of


def start_order(app: App, creator_name: str = "alice", **context: object) -> int:
    creator = add_user(app, creator_name)
    ctx = {"number": "SO-1", **context}
    return app.engine.start("order", "order", "1", creator, context=ctx).instance_id


def test_a_new_instance_starts_in_the_initial_state_with_one_audit_event(app: App) -> None:
    instance_id = start_order(app)
    assert state_of(app, instance_id) == ("draft", 1)
    with app.engine.session_factory() as s:
        kinds = s.execute(select(audit.c.kind, audit.c.to_state)).all()
    assert [tuple(k) for k in kinds] == [("start", "draft")]


def test_submit_moves_to_submitted_and_queues_the_check_step_after_commit(
    app: App, publisher: RecordingPublisher
) -> None:
    instance_id = start_order(app)
    clerk = add_user(app, "bob")
    result = app.engine.fire(instance_id, "submit", clerk)
    assert (result.from_state, result.to_state, result.version) == ("draft", "submitted", 2)
    with app.engine.session_factory() as s:
        jobs = s.execute(select(outbox.c.step, outbox.c.status, outbox.c.queue)).all()
        events = s.execute(
            select(audit.c.trigger, audit.c.from_state, audit.c.to_state, audit.c.actor).where(
                audit.c.kind == "transition"
            )
        ).all()
    assert [tuple(j) for j in jobs] == [("order.run_checks", "pending", "default")]
    assert [tuple(e) for e in events] == [("submit", "draft", "submitted", "bob")]
    assert [j.step for j in publisher.published] == ["order.run_checks"]


def test_an_urgent_instance_queues_its_steps_on_the_urgent_queue(app: App) -> None:
    clerk = add_user(app, "alice")
    started = app.engine.start("order", "order", "9", clerk, priority="urgent")
    app.engine.fire(started.instance_id, "submit", clerk)
    with app.engine.session_factory() as s:
        assert s.scalar(select(outbox.c.queue)) == "urgent"


def test_an_undeclared_trigger_is_refused_and_changes_nothing(app: App) -> None:
    instance_id = start_order(app)
    with app.engine.session_factory() as s:
        before = snapshot(s)
    with pytest.raises(TransitionNotAllowedError, match="'checks_passed' is not allowed from"):
        app.engine.fire(instance_id, "checks_passed", SYSTEM)
    with app.engine.session_factory() as s:
        assert snapshot(s) == before


def test_a_clerk_cannot_fire_a_system_trigger(app: App) -> None:
    instance_id = start_order(app)
    clerk = add_user(app, "bob")
    app.engine.fire(instance_id, "submit", clerk)
    with pytest.raises(PermissionDeniedError):
        app.engine.fire(instance_id, "checks_passed", clerk)
    assert state_of(app, instance_id) == ("submitted", 2)


def test_a_supervisor_override_without_a_reason_is_refused_by_its_guard(app: App) -> None:
    instance_id = start_order(app)
    boss = add_user(app, "boss", role="supervisor")
    app.engine.fire(instance_id, "submit", boss)
    app.engine.fire(instance_id, "hold", SYSTEM, context_update={"hold_reason": "CREDIT"})
    with pytest.raises(TransitionNotAllowedError, match="reason_given"):
        app.engine.fire(instance_id, "override", boss)
    assert state_of(app, instance_id) == ("on_hold", 3)
    app.engine.fire(instance_id, "override", boss, reason="customer paid in advance")
    assert state_of(app, instance_id) == ("approved", 4)


def test_entering_a_task_state_opens_a_task_and_leaving_it_closes_it(app: App) -> None:
    instance_id = start_order(app)
    clerk = add_user(app, "bob")
    app.engine.fire(instance_id, "submit", clerk)
    app.engine.fire(instance_id, "hold", SYSTEM, context_update={"hold_reason": "STOCK_SHORT"})
    with app.engine.session_factory() as s:
        title, status, due = s.execute(select(tasks.c.title, tasks.c.status, tasks.c.due_at)).one()
        job_status = s.scalar(select(outbox.c.status))
    assert title == "订单 SO-1 需处理: STOCK_SHORT"
    assert status == "open" and due is not None
    assert job_status == "cancelled"  # the check step's job belongs to the state we left
    app.engine.fire(instance_id, "recheck", clerk)
    with app.engine.session_factory() as s:
        assert s.scalar(select(tasks.c.status)) == "cancelled"


def test_a_stale_expected_version_is_a_conflict(app: App) -> None:
    instance_id = start_order(app)
    clerk = add_user(app, "bob")
    app.engine.fire(instance_id, "submit", clerk, expected_version=1)
    with pytest.raises(ConflictError):
        app.engine.fire(instance_id, "cancel", clerk, expected_version=1)


def test_firing_on_a_missing_instance_says_so(app: App) -> None:
    with pytest.raises(NotFoundError):
        app.engine.fire(424242, "submit", SYSTEM)


def test_why_names_the_open_task_the_pending_job_and_the_failing_guards(app: App) -> None:
    from order_flow.engine.why import why

    instance_id = start_order(app)
    clerk = add_user(app, "bob")
    app.engine.fire(instance_id, "submit", clerk)
    waiting = why(app.engine, instance_id)
    assert waiting.state == "submitted" and waiting.state_label == "已提交"
    assert [j.step for j in waiting.jobs] == ["order.run_checks"]
    assert "order.run_checks (pending" in waiting.summary()
    app.engine.fire(instance_id, "hold", SYSTEM, context_update={"hold_reason": "CREDIT"})
    held = why(app.engine, instance_id, lang="en")
    assert held.state_label == "On hold" and held.jobs == ()
    assert [t.title for t in held.tasks] == ["订单 SO-1 需处理: CREDIT"]
    override = next(m for m in held.moves if m.trigger == "override")
    assert override.failing_guards == ("reason_given",)
    assert "override needs reason_given" in held.summary()


def test_firing_with_a_job_of_another_instance_is_refused_and_changes_nothing(app: App) -> None:
    first, second = start_order(app), start_order(app, "zoe")
    clerk = add_user(app, "bob")
    job_of_first = app.engine.fire(first, "submit", clerk).job_ids[0]
    app.engine.fire(second, "submit", clerk)
    with app.engine.session_factory() as s:
        before = snapshot(s)
    with pytest.raises(ConflictError, match="not an open job"):
        app.engine.fire(second, "hold", SYSTEM, job_id=job_of_first)
    with app.engine.session_factory() as s:
        assert snapshot(s) == before
