"""One transition = one transaction: a failure anywhere inside it leaves no trace.

The main injector counts the SQL statements that a unit of work sends to the
database and makes the N-th one fail, for every N, either before the statement
reaches the database or right after it ran (so that the rollback has real work
to undo). After each failure the engine's tables must be exactly as they were,
nothing must have been published, and the same action must then succeed on the
same instance (no lock or half-written row left behind). The last value of N is
the first one the action gets through without reaching it, so every statement of
every step (instance UPDATE, audit INSERT, leaving the old state, entering the
new one) is covered without hard-coding how many statements there are.

Everything runs on SQLite and on PostgreSQL through the ``app`` fixture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.core import FireResult
from order_flow.engine.publisher import JobRef, RecordingPublisher
from order_flow.store.tables import comments, outbox, tasks
from tests.integration.helpers import add_user, snapshot, state_of

#: The statements the injector counts; BEGIN, SAVEPOINT and PRAGMA are left alone.
_COUNTED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


class InjectedFault(Exception):
    """The failure the tests inject; nothing in order_flow raises or catches it."""


class StatementFault:
    """Make the N-th counted statement sent through ``db`` fail.

    ``phase="before"``: it raises before the statement reaches the database.
    ``phase="after"``: the statement runs, then it raises (the rollback must undo it).
    With ``fail_at=None`` it only records the statements.
    """

    def __init__(self, db: SqlEngine, fail_at: int | None, phase: str) -> None:
        assert phase in ("before", "after")
        self.db = db
        self.fail_at = fail_at
        self.phase = phase
        self.statements: list[str] = []
        self.fired: str | None = None

    def __enter__(self) -> StatementFault:
        event.listen(self.db, "before_cursor_execute", self._before)
        event.listen(self.db, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.db, "before_cursor_execute", self._before)
        event.remove(self.db, "after_cursor_execute", self._after)

    def _counted(self, statement: str) -> bool:
        return statement.lstrip().upper().startswith(_COUNTED)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self._counted(statement):
            return
        self.statements.append(statement)
        if self.phase == "before" and len(self.statements) == self.fail_at:
            self._fire(statement)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self._counted(statement) and self.phase == "after":
            if len(self.statements) == self.fail_at:
                self._fire(statement)

    def _fire(self, statement: str) -> None:
        self.fired = " ".join(statement.split())
        raise InjectedFault(f"{self.phase} statement {self.fail_at}: {self.fired}")


def everything(s: Session) -> dict[str, list[tuple[Any, ...]]]:
    """helpers.snapshot plus the task comments that TaskService.complete writes."""
    out = snapshot(s)
    out[comments.name] = [tuple(r) for r in s.execute(select(comments).order_by(comments.c.id))]
    return out


# -- the world the scenarios play in -----------------------------------------------


@dataclass
class World:
    app: App
    publisher: RecordingPublisher
    creator: Actor
    clerk: Actor
    reviewer_1: Actor
    reviewer_2: Actor
    warehouse: Actor
    boss: Actor
    numbers: Iterator[int]

    def start(self, **context: object) -> int:
        n = next(self.numbers)
        ctx = {"number": f"SO-{n}", **context}
        return self.app.engine.start(
            "order", "order", str(n), self.creator, context=ctx
        ).instance_id

    def fire(self, instance_id: int, trigger: str, actor: Actor = SYSTEM, **kw: Any) -> FireResult:
        return self.app.engine.fire(instance_id, trigger, actor, **kw)

    def open_task(self, instance_id: int) -> int:
        with self.app.engine.session_factory() as s:
            return s.execute(
                select(tasks.c.id).where(
                    tasks.c.instance_id == instance_id, tasks.c.status == "open"
                )
            ).scalar_one()

    def pending_job(self, instance_id: int) -> int:
        with self.app.engine.session_factory() as s:
            return s.execute(
                select(outbox.c.id).where(
                    outbox.c.instance_id == instance_id, outbox.c.status == "pending"
                )
            ).scalar_one()

    def on_hold(self) -> int:
        iid = self.start()
        self.fire(iid, "submit", self.clerk)
        self.fire(iid, "hold", context_update={"hold_reason": "CREDIT"})
        return iid


@pytest.fixture
def world(app: App, publisher: RecordingPublisher) -> World:
    return World(
        app=app,
        publisher=publisher,
        creator=add_user(app, "creator"),
        clerk=add_user(app, "clerk"),
        reviewer_1=add_user(app, "reviewer1"),
        reviewer_2=add_user(app, "reviewer2"),
        warehouse=add_user(app, "wh", groups=("warehouse",)),
        boss=add_user(app, "boss", role="supervisor", groups=()),
        numbers=count(1),
    )


Action = Callable[[], object]


def start_an_order(w: World) -> Action:
    return lambda: w.app.engine.start(
        "order", "order", "new", w.creator, context={"number": "SO-NEW"}
    )


def submit_a_draft(w: World) -> Action:
    iid = w.start()
    return lambda: w.fire(iid, "submit", w.clerk)


def hold_a_submitted_order(w: World) -> Action:
    """submitted -> on_hold: cancels the check job, opens a task and its candidates."""
    iid = w.start()
    w.fire(iid, "submit", w.clerk)
    return lambda: w.fire(iid, "hold", context_update={"hold_reason": "STOCK_SHORT"})


def pass_the_checks_as_the_worker(w: World) -> Action:
    """submitted -> approved with the job id: marks the job done, queues the next step."""
    iid = w.start()
    w.fire(iid, "submit", w.clerk)
    job = w.pending_job(iid)
    return lambda: w.fire(iid, "checks_passed", job_id=job)


def recheck_an_order_on_hold(w: World) -> Action:
    """on_hold -> submitted: cancels the task, queues the check job again."""
    iid = w.on_hold()
    return lambda: w.fire(iid, "recheck", w.clerk)


def complete_the_hold_task_with_recheck(w: World) -> Action:
    """Claims, closes the task, writes a comment, fires recheck: all in one transaction."""
    iid = w.on_hold()
    task = w.open_task(iid)
    return lambda: w.app.tasks.complete(task, "recheck", w.clerk, comment="已补足信用额度")


def complete_the_second_review(w: World) -> Action:
    """review -> approved by a second, distinct reviewer: closes a task, queues a job."""
    iid = w.start()
    w.fire(iid, "submit", w.clerk)
    w.fire(iid, "needs_review")
    w.app.tasks.complete(w.open_task(iid), "approve", w.reviewer_1)
    task = w.open_task(iid)
    return lambda: w.app.tasks.complete(task, "approve", w.reviewer_2)


def sign_off_one_group_of_two(w: World) -> Action:
    """feasibility -> feasibility: the self-loop closes one task and opens the next."""
    iid = w.start(signoff_groups=["warehouse", "production"])
    w.fire(iid, "submit", w.clerk)
    w.fire(iid, "needs_feasibility")
    task = w.open_task(iid)
    return lambda: w.app.tasks.complete(task, "approve", w.warehouse)


def claim_a_task(w: World) -> Action:
    task = w.open_task(w.on_hold())
    return lambda: w.app.tasks.claim(task, w.clerk)


def reassign_a_claimed_task(w: World) -> Action:
    task = w.open_task(w.on_hold())
    w.app.tasks.claim(task, w.clerk)
    return lambda: w.app.tasks.reassign(task, w.creator.user_id or 0, w.boss)


SCENARIOS: dict[str, Callable[[World], Action]] = {
    "start": start_an_order,
    "submit": submit_a_draft,
    "hold": hold_a_submitted_order,
    "checks_passed_with_job": pass_the_checks_as_the_worker,
    "recheck": recheck_an_order_on_hold,
    "complete_recheck": complete_the_hold_task_with_recheck,
    "complete_second_review": complete_the_second_review,
    "sign_off_self_loop": sign_off_one_group_of_two,
    "claim": claim_a_task,
    "reassign": reassign_a_claimed_task,
}

#: Statements each transition scenario must have sent (case-insensitive prefixes), so a
#: test that silently stopped covering a step fails instead of passing vacuously.
MUST_TOUCH: dict[str, tuple[str, ...]] = {
    "submit": ("update workflow_instances", "insert into audit_events", "insert into outbox"),
    "hold": (
        "update workflow_instances",
        "insert into audit_events",
        "update outbox",
        "insert into tasks",
        "insert into task_candidates",
    ),
    "recheck": (
        "update workflow_instances",
        "update task_candidates",
        "update tasks",
        "insert into outbox",
    ),
    "complete_recheck": (
        "update tasks",
        "insert into task_comments",
        "update workflow_instances",
        "insert into outbox",
    ),
    "sign_off_self_loop": ("update tasks", "update workflow_instances", "insert into tasks"),
}


def _published_ids(publisher: RecordingPublisher) -> list[int]:
    return [j.id for j in publisher.published]


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_failure_at_any_statement_of_an_action_leaves_every_table_as_it_was(
    world: World, scenario: str, phase: str
) -> None:
    app, publisher = world.app, world.publisher
    covered: list[str] = []
    for n in count(1):
        action = SCENARIOS[scenario](world)
        with app.engine.session_factory() as s:
            before = everything(s)
        published_before = _published_ids(publisher)

        with StatementFault(app.db, fail_at=n, phase=phase) as fault:
            try:
                action()
            except InjectedFault:
                pass
        if fault.fired is None:  # n is past the last statement: the action went through
            covered = fault.statements
            assert n > 1, "the injector saw no statement at all"
            break

        where = f"{scenario}: failure {phase} statement {n}: {fault.fired}"
        with app.engine.session_factory() as s:
            assert everything(s) == before, where
        assert _published_ids(publisher) == published_before, where

        # Nothing was left half-done or locked: the same action now goes through.
        result = action()
        if isinstance(result, FireResult):
            assert _published_ids(publisher) == published_before + list(result.job_ids), where

    sent = " | ".join(" ".join(stmt.split()).lower() for stmt in covered)
    for needed in MUST_TOUCH.get(scenario, ()):
        assert needed in sent, f"{scenario} no longer sends '{needed}': {sent}"


# -- named steps of Engine.fire_in, patched one at a time ---------------------------


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", ["audit", "_leave", "_enter"])
def test_a_failure_in_one_step_of_the_hold_transition_rolls_back_the_whole_transition(
    world: World, monkeypatch: pytest.MonkeyPatch, step: str, when: str
) -> None:
    app = world.app
    iid = world.start()
    world.fire(iid, "submit", world.clerk)
    original = getattr(app.engine, step)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if when == "before":
            raise InjectedFault(f"{step} refused")
        original(*args, **kwargs)
        raise InjectedFault(f"{step} failed after doing its work")

    with app.engine.session_factory() as s:
        before = everything(s)
    published = len(world.publisher.published)
    monkeypatch.setattr(app.engine, step, failing)
    with pytest.raises(InjectedFault):
        app.engine.fire(iid, "hold", SYSTEM, context_update={"hold_reason": "CREDIT"})
    with app.engine.session_factory() as s:
        assert everything(s) == before
    assert len(world.publisher.published) == published
    assert state_of(app, iid) == ("submitted", 2)


def test_a_failure_while_committing_publishes_nothing_and_changes_nothing(world: World) -> None:
    app = world.app
    iid = world.start()

    def refuse_commit(conn: Any) -> None:
        raise InjectedFault("commit refused")

    with app.engine.session_factory() as s:
        before = everything(s)
    published = len(world.publisher.published)
    event.listen(app.db, "commit", refuse_commit)
    try:
        with pytest.raises(InjectedFault):
            world.fire(iid, "submit", world.clerk)
    finally:
        event.remove(app.db, "commit", refuse_commit)
    with app.engine.session_factory() as s:
        assert everything(s) == before
    assert len(world.publisher.published) == published
    assert world.fire(iid, "submit", world.clerk).to_state == "submitted"


# -- after the commit -----------------------------------------------------------------


class BrokenPublisher:
    """A broker that is down: every publish raises."""

    def __init__(self) -> None:
        self.attempts: list[JobRef] = []

    def publish(self, jobs: list[JobRef]) -> bool:
        self.attempts.extend(jobs)
        raise ConnectionError("redis is down")


def test_a_publisher_failure_after_commit_keeps_the_transition_and_leaves_the_job_pending(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    app = world.app
    iid = world.start()
    broken = BrokenPublisher()
    app.engine.publisher = broken
    with caplog.at_level(logging.ERROR, logger="order_flow.engine.uow"):
        result = world.fire(iid, "submit", world.clerk)  # does not raise

    assert (result.to_state, result.version) == ("submitted", 2)
    assert state_of(app, iid) == ("submitted", 2)
    assert [j.id for j in broken.attempts] == list(result.job_ids)
    with app.engine.session_factory() as s:
        jobs = s.execute(select(outbox.c.id, outbox.c.status).where(outbox.c.instance_id == iid))
        assert [tuple(j) for j in jobs] == [(result.job_ids[0], "pending")]  # for the relay
    assert "relay will retry" in caplog.text


def test_a_publisher_failure_after_completing_a_task_keeps_the_task_closed(
    world: World,
) -> None:
    app = world.app
    iid = world.on_hold()
    task = world.open_task(iid)
    app.engine.publisher = BrokenPublisher()
    result = app.tasks.complete(task, "recheck", world.clerk)
    assert state_of(app, iid) == ("submitted", 4)
    with app.engine.session_factory() as s:
        status = s.scalar(select(tasks.c.status).where(tasks.c.id == task))
        job = s.scalar(select(outbox.c.status).where(outbox.c.id == result.job_ids[0]))
    assert (status, job) == ("completed", "pending")


class AcceptingPublisher:
    """A broker that takes every job, so the unit of work marks the rows published."""

    def __init__(self) -> None:
        self.sent: list[JobRef] = []

    def publish(self, jobs: list[JobRef]) -> bool:
        self.sent.extend(jobs)
        return True


def test_a_failure_while_marking_jobs_published_keeps_the_transition_and_the_job_pending(
    world: World,
) -> None:
    app = world.app
    iid = world.start()
    accepting = AcceptingPublisher()
    app.engine.publisher = accepting

    def refuse_marking(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if " ".join(statement.split()).upper().startswith("UPDATE OUTBOX SET STATUS"):
            raise InjectedFault("the database went away after the commit")

    event.listen(app.db, "before_cursor_execute", refuse_marking)
    try:
        result = world.fire(iid, "submit", world.clerk)  # does not raise
    finally:
        event.remove(app.db, "before_cursor_execute", refuse_marking)

    assert state_of(app, iid) == ("submitted", 2)
    assert [j.id for j in accepting.sent] == list(result.job_ids)
    with app.engine.session_factory() as s:
        status = s.scalar(select(outbox.c.status).where(outbox.c.id == result.job_ids[0]))
    assert status == "pending"  # the relay publishes it again: at least once, never lost

    # Without the fault the same path marks the job published.
    other = world.start()
    job = world.fire(other, "submit", world.clerk).job_ids[0]
    with app.engine.session_factory() as s:
        assert s.scalar(select(outbox.c.status).where(outbox.c.id == job)) == "published"
