"""A model-based test of the engine on the shipped order workflow.

Hypothesis drives the real engine (real database, real TaskService) through random
sequences of starts, triggers (declared and junk, by every kind of actor, with and
without a reason, with right and stale expected versions), worker deliveries, and
task claims, completions, unclaims, reassignments and unassignments. After every
step the database is checked against the engine's invariants:

- only declared transitions ever happen;
- every state change has exactly one audit event, and the trail ends in the state;
- the version goes up by exactly one per change (the model tracks it);
- an instance has exactly the open task and the live job its state creates, no more;
- a candidate row is "unclaimed" exactly while its task is open and unassigned;
- every committed job is published exactly once, and nothing else is;
- a refused action changes nothing and publishes nothing.

The same machine runs on SQLite and, with fewer examples, on PostgreSQL (the
``app`` fixture is parametrised over both; the machine empties the tables itself
before each example). The last two tests pin down what reading the engine for the
model turned up: a TaskService bug (that test fails until the engine is fixed), and
the late delivery of a cancelled job, which the job runner must absorb.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.core import FireResult
from order_flow.engine.publisher import RecordingPublisher
from order_flow.engine.steps import JobOutcome, run_job
from order_flow.errors import (
    ConflictError,
    OrderFlowError,
    PermissionDeniedError,
    TransitionNotAllowedError,
)
from order_flow.store.tables import (
    audit,
    candidates,
    comments,
    instances,
    outbox,
    tasks,
    user_groups,
    users,
)
from order_flow.workflow.definition import PRIORITIES, WorkflowDefinition
from tests.integration.helpers import add_user, snapshot

SIGNOFF_GROUPS = ("warehouse", "production", "logistics")
#: name -> (role, groups); "creator" starts most orders, so reviewer_not_creator matters.
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "creator": ("clerk", ("sales",)),
    "sales2": ("clerk", ("sales",)),
    "sales3": ("clerk", ("sales",)),
    "wh": ("clerk", ("warehouse",)),
    "prod": ("clerk", ("production",)),
    "logi": ("clerk", ("logistics",)),
    "boss": ("supervisor", ()),
}
CLERKS = tuple(n for n, (role, _) in USERS.items() if role == "clerk")
ACTOR_NAMES = ("system", *USERS)
JUNK_TRIGGERS = ("", "approve", "SUBMIT", "submit ", "ship", "delete", "取消", "start")
JUNK_OUTCOMES = ("", "APPROVE", "close", "sign_off", "审核")
REASONS = (None, "", "   ", "客户已预付款", "库存已补足")
#: Tables the machine empties before each example, children first (workflow versions stay).
RESET_ORDER = (comments, candidates, audit, outbox, tasks, instances, user_groups, users)

SQLITE_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=20,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
POSTGRES_SETTINGS = settings(SQLITE_SETTINGS, max_examples=20)

picks = st.integers(min_value=0, max_value=10_000)
actor_names = st.sampled_from(ACTOR_NAMES)
user_names = st.sampled_from(tuple(USERS))
reasons = st.sampled_from(REASONS)


def everything(s: Session) -> dict[str, list[tuple[Any, ...]]]:
    out = snapshot(s)
    out[comments.name] = [tuple(r) for r in s.execute(select(comments).order_by(comments.c.id))]
    return out


class EngineMachine(RuleBasedStateMachine):
    def __init__(self, app: App, publisher: RecordingPublisher) -> None:
        super().__init__()
        self.app = app
        self.publisher = publisher
        with app.engine.session_factory.begin() as s:
            for table in RESET_ORDER:
                s.execute(delete(table))
            self.definition: WorkflowDefinition = app.engine.definitions.latest(
                s, "order"
            ).definition
        publisher.published.clear()
        self.actors: dict[str, Actor] = {"system": SYSTEM}
        for name, (role, groups) in USERS.items():
            self.actors[name] = add_user(app, name, role=role, groups=groups)
        self.declared = {t.key for t in self.definition.transitions}
        self.all_triggers = sorted({t.trigger for t in self.definition.transitions})
        #: instance id -> (state, version), as the model expects them.
        self.expected: dict[int, tuple[str, int]] = {}
        self.task_ids: list[int] = []
        self.open_task_ids: list[int] = []
        self.serial = 0

    # -- helpers ------------------------------------------------------------------

    def live_instances(self) -> list[int]:
        """Instances not in a final state."""
        return sorted(
            i for i, (state, _) in self.expected.items() if self.definition.triggers_from(state)
        )

    def pick_instance(self, pick: int) -> int:
        ids = sorted(self.expected)
        return ids[pick % len(ids)]

    def pick_task(self, pick: int, among: str = "any") -> dict[str, Any]:
        ids = self.open_task_ids if among == "open" and self.open_task_ids else self.task_ids
        task_id = ids[pick % len(ids)]
        return self.read_task(task_id)

    def read_task(self, task_id: int) -> dict[str, Any]:
        with self.app.engine.session_factory() as s:
            row = s.execute(select(tasks).where(tasks.c.id == task_id)).one()
            groups = set(
                s.scalars(select(candidates.c.group_name).where(candidates.c.task_id == task_id))
            )
        return {**row._asdict(), "groups": groups}

    def attempt(self, what: str, op: Callable[[], Any]) -> tuple[bool, Any]:
        """Run ``op``; if it is refused, nothing may have changed or been published."""
        with self.app.engine.session_factory() as s:
            before = everything(s)
        published = list(self.publisher.published)
        try:
            return True, op()
        except OrderFlowError as exc:
            with self.app.engine.session_factory() as s:
                assert everything(s) == before, f"{what} was refused ({exc!r}) but changed rows"
            assert self.publisher.published == published, f"{what} was refused but published"
            event(f"refused: {type(exc).__name__}")
            return False, exc

    def record_fire(self, result: FireResult, trigger: str, published_before: int) -> None:
        state, version = self.expected[result.instance_id]
        assert result.trigger == trigger
        assert (result.from_state, result.version) == (state, version + 1)
        assert (trigger, result.from_state, result.to_state) in self.declared
        assert [j.id for j in self.publisher.published[published_before:]] == list(result.job_ids)
        event(f"transition {trigger}: {result.from_state} -> {result.to_state}")
        self.expected[result.instance_id] = (result.to_state, result.version)

    def user_for(self, task: dict[str, Any], fit: bool, who: int) -> str:
        """Anyone at all, or (``fit``) the holder or a user of one of the task's groups."""
        if not fit:
            return ACTOR_NAMES[who % len(ACTOR_NAMES)]
        if task["assignee_id"] is not None:
            return next(n for n, a in self.actors.items() if a.user_id == task["assignee_id"])
        fitting = [n for n, (_, groups) in USERS.items() if task["groups"] & set(groups)]
        return (fitting or list(USERS))[who % len(fitting or USERS)]

    def live_job(self, instance_id: int) -> int | None:
        with self.app.engine.session_factory() as s:
            return s.scalar(
                select(outbox.c.id).where(
                    outbox.c.instance_id == instance_id,
                    outbox.c.status.in_(("pending", "published")),
                )
            )

    # -- rules: instances and triggers ----------------------------------------------

    @precondition(lambda self: len(self.live_instances()) < 3)
    @rule(
        creator=st.sampled_from(("creator", "creator", "sales2", "boss")),
        signoff=st.lists(st.sampled_from(SIGNOFF_GROUPS), unique=True, max_size=3),
        priority=st.sampled_from(PRIORITIES),
    )
    def start_an_order(self, creator: str, signoff: list[str], priority: str) -> None:
        self.serial += 1
        context = {"number": f"SO-{self.serial}", "signoff_groups": signoff}
        published = len(self.publisher.published)
        result = self.app.engine.start(
            "order", "order", str(self.serial), self.actors[creator], context, priority
        )
        assert (result.to_state, result.version) == (self.definition.initial, 1)
        assert len(self.publisher.published) == published + len(result.job_ids)
        self.expected[result.instance_id] = (result.to_state, 1)

    @precondition(lambda self: self.expected)
    @rule(
        mode=st.sampled_from(("plausible", "plausible", "plausible", "any declared", "junk")),
        pick=picks,
        which=picks,
        who=picks,
        reason=reasons,
        hold_reason=st.sampled_from((None, "CREDIT", "STOCK_SHORT")),
        expected_version=st.sampled_from(("none", "none", "none", "none", "current", "stale")),
    )
    def fire_a_trigger(
        self,
        mode: str,
        pick: int,
        which: int,
        who: int,
        reason: str | None,
        hold_reason: str | None,
        expected_version: str,
    ) -> None:
        """Junk or any declared trigger by anyone; or, mostly, what the web app and the
        worker do: a trigger of the instance's state, by a role that the transition lists.
        A system trigger from a state with a step comes from the worker, with its job id.
        """
        if mode != "plausible":
            names = JUNK_TRIGGERS if mode == "junk" else self.all_triggers
            actor = self.actors[ACTOR_NAMES[who % len(ACTOR_NAMES)]]
            self._fire(self.pick_instance(pick), names[which % len(names)], actor, reason)
            return
        live = self.live_instances()
        if not live:
            return  # every instance is in a final state
        instance_id = live[pick % len(live)]
        state, version = self.expected[instance_id]
        triggers = self.definition.triggers_from(state)
        trigger = triggers[which % len(triggers)]
        roles = sorted(
            {
                r
                for t in self.definition.transitions_from(state)
                if t.trigger == trigger
                for r in t.actors
            }
        )
        role = roles[who % len(roles)]
        if role == "system":
            actor = SYSTEM
        elif role == "clerk":
            actor = self.actors[CLERKS[who % len(CLERKS)]]
        else:
            actor = self.actors["boss"]
        kwargs: dict[str, Any] = {}
        if hold_reason:
            kwargs["context_update"] = {"hold_reason": hold_reason}
        if expected_version != "none":
            kwargs["expected_version"] = version if expected_version == "current" else version - 1
        job_id = self.live_job(instance_id) if actor.is_system else None
        if job_id is not None:
            kwargs["job_id"] = job_id
        ok = self._fire(instance_id, trigger, actor, reason, **kwargs)
        if expected_version == "stale":
            assert not ok, "a stale expected version was accepted"
        if ok and job_id is not None:
            with self.app.engine.session_factory() as s:
                status = s.scalar(select(outbox.c.status).where(outbox.c.id == job_id))
            assert status == "done", "the worker's job was not marked done"

    def _fire(
        self, instance_id: int, trigger: str, actor: Actor, reason: str | None, **kwargs: Any
    ) -> bool:
        state, _ = self.expected[instance_id]
        options = [t for t in self.definition.transitions_from(state) if t.trigger == trigger]
        published = len(self.publisher.published)
        ok, result = self.attempt(
            f"{trigger!r} by {actor.name} on {instance_id} in {state}",
            lambda: self.app.engine.fire(instance_id, trigger, actor, reason=reason, **kwargs),
        )
        if not options:
            assert isinstance(result, TransitionNotAllowedError | ConflictError), result
        elif not any(actor.may_fire(t.actors) for t in options):
            assert isinstance(result, PermissionDeniedError | ConflictError), result
        if ok:
            self.record_fire(result, trigger, published)
        return ok

    @precondition(lambda self: self.expected)
    @rule(
        pick=picks,
        which=st.sampled_from(("hold", "needs_review", "needs_feasibility")),
        who=st.sampled_from(CLERKS),
    )
    def send_an_order_to_a_person(self, pick: int, which: str, who: str) -> None:
        """Guidance: submit a draft and let the checks route it to a human task."""
        waiting = [i for i, (state, _) in self.expected.items() if state in ("draft", "submitted")]
        if not waiting:
            return
        instance_id = waiting[pick % len(waiting)]
        if self.expected[instance_id][0] == "draft":
            if not self._fire(instance_id, "submit", self.actors[who], None):
                return
        context = {"hold_reason": "CREDIT"} if which == "hold" else None
        job_id = self.live_job(instance_id)
        self._fire(instance_id, which, SYSTEM, None, context_update=context, job_id=job_id)

    # -- rules: tasks -----------------------------------------------------------------

    @precondition(lambda self: self.task_ids)
    @rule(
        action=st.sampled_from(("claim", "claim", "unclaim", "reassign", "unassign")),
        pick=picks,
        among=st.sampled_from(("open", "open", "any")),
        fit=st.booleans(),
        who=picks,
        user=user_names,
        to=st.sampled_from((*USERS, "nobody")),
        by=st.sampled_from(("boss", "boss", *CLERKS)),
    )
    def claim_unclaim_reassign_or_unassign_a_task(
        self,
        action: str,
        pick: int,
        among: str,
        fit: bool,
        who: int,
        user: str,
        to: str,
        by: str,
    ) -> None:
        if action == "claim":
            self.claim_a_task(pick, among, fit, who)
        elif action == "unclaim":
            self.unclaim_a_task(pick, among, user)
        elif action == "reassign":
            self.reassign_a_task(pick, to, by)
        else:
            self.unassign_a_task(pick, by)

    def claim_a_task(self, pick: int, among: str, fit: bool, who: int) -> None:
        task = self.pick_task(pick, among)
        user = self.user_for(task, fit, who)
        actor = self.actors[user]
        may = actor.is_supervisor or bool(task["groups"] & actor.groups)
        should = (
            actor.user_id is not None
            and may
            and task["status"] == "open"
            and task["assignee_id"] in (None, actor.user_id)
        )
        ok, _ = self.attempt(
            f"claim of {task['id']} by {user}", lambda: self.app.tasks.claim(task["id"], actor)
        )
        assert ok == should, f"claim of {task} by {actor}: accepted={ok}, expected {should}"
        if ok:
            assert self.read_task(task["id"])["assignee_id"] == actor.user_id

    def unclaim_a_task(self, pick: int, among: str, user: str) -> None:
        # Users only: the system actor's unclaim is a known bug, pinned down below.
        task = self.pick_task(pick, among)
        actor = self.actors[user]
        may_see = actor.is_supervisor or bool(task["groups"] & actor.groups)
        should = may_see and task["status"] == "open" and task["assignee_id"] == actor.user_id
        ok, _ = self.attempt(
            f"unclaim of {task['id']} by {user}", lambda: self.app.tasks.unclaim(task["id"], actor)
        )
        assert ok == should, f"unclaim of {task} by {actor}: accepted={ok}, expected {should}"

    def reassign_a_task(self, pick: int, to: str, by: str) -> None:
        task = self.pick_task(pick, "open")
        actor = self.actors[by]
        target_id = (self.actors[to].user_id or 0) if to in USERS else 987_654
        target_groups = set(USERS[to][1]) if to in USERS else set()
        should = (
            actor.is_supervisor
            and task["status"] == "open"
            and bool(task["groups"] & target_groups)
        )
        ok, _ = self.attempt(
            f"reassign of {task['id']} to {to} by {by}",
            lambda: self.app.tasks.reassign(task["id"], target_id, actor),
        )
        assert ok == should, f"reassign of {task} to {to} by {by}: accepted={ok}"
        if ok:
            assert self.read_task(task["id"])["assignee_id"] == target_id

    def unassign_a_task(self, pick: int, by: str) -> None:
        task = self.pick_task(pick, "open")
        actor = self.actors[by]
        should = actor.is_supervisor and task["status"] == "open"
        ok, _ = self.attempt(
            f"unassign of {task['id']} by {by}", lambda: self.app.tasks.unassign(task["id"], actor)
        )
        assert ok == should, f"unassign of {task} by {by}: accepted={ok}"
        if ok:
            assert self.read_task(task["id"])["assignee_id"] is None

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def the_database_keeps_the_engine_invariants(self) -> None:
        with self.app.engine.session_factory() as s:
            rows = {
                r.id: r
                for r in s.execute(select(instances.c.id, instances.c.state, instances.c.version))
            }
            events = s.execute(
                select(
                    audit.c.instance_id,
                    audit.c.kind,
                    audit.c.trigger,
                    audit.c.from_state,
                    audit.c.to_state,
                ).order_by(audit.c.id)
            ).all()
            open_tasks = s.execute(
                select(tasks.c.id, tasks.c.instance_id, tasks.c.state, tasks.c.kind).where(
                    tasks.c.status == "open"
                )
            ).all()
            live_jobs = s.execute(
                select(outbox.c.id, outbox.c.instance_id, outbox.c.state).where(
                    outbox.c.status.in_(("pending", "published"))
                )
            ).all()
            flags = s.execute(
                select(
                    candidates.c.task_id,
                    candidates.c.unclaimed,
                    tasks.c.status,
                    tasks.c.assignee_id,
                ).join(tasks, tasks.c.id == candidates.c.task_id)
            ).all()
            job_ids = list(s.scalars(select(outbox.c.id).order_by(outbox.c.id)))
            self.task_ids = list(s.scalars(select(tasks.c.id).order_by(tasks.c.id)))
            task_count = s.scalar(select(func.count()).select_from(tasks))
        assert task_count == len(self.task_ids)
        self.open_task_ids = sorted(t.id for t in open_tasks)

        # The model and the database agree on every instance's state and version.
        assert {i: (r.state, r.version) for i, r in rows.items()} == self.expected

        # Only declared transitions ever happen.
        for e in events:
            if e.kind == "transition":
                assert (e.trigger, e.from_state, e.to_state) in self.declared, e

        # One audit event per state change; the trail ends where the instance is.
        changes: Counter[int] = Counter()
        starts: Counter[int] = Counter()
        last: dict[int, str] = {}
        for e in events:
            if e.kind in ("transition", "migrate"):
                changes[e.instance_id] += 1
            if e.kind == "start":
                starts[e.instance_id] += 1
            if e.kind in ("start", "transition", "migrate"):
                last[e.instance_id] = e.to_state
        for i, r in rows.items():
            assert starts[i] == 1, (i, starts[i])
            assert changes[i] == r.version - 1, (i, changes[i], r.version)
            assert last[i] == r.state, (i, last[i], r.state)

        # Exactly the open task and the live job the current state creates.
        tasks_of: Counter[int] = Counter()
        for t in open_tasks:
            assert t.state == rows[t.instance_id].state, f"open task {t} outlived its state"
            tasks_of[t.instance_id] += t.kind == "human"  # incidents come on top
        jobs_of: Counter[int] = Counter()
        for j in live_jobs:
            assert j.state == rows[j.instance_id].state, f"live job {j} outlived its state"
            jobs_of[j.instance_id] += 1
        for i, r in rows.items():
            spec = self.definition.state(r.state)
            assert tasks_of[i] == (spec.task is not None), (i, r.state, tasks_of[i])
            assert jobs_of[i] == (spec.step is not None), (i, r.state, jobs_of[i])

        # The inbox flag is true exactly while a task is open and unassigned.
        for f in flags:
            assert f.unclaimed == (f.status == "open" and f.assignee_id is None), f

        # Every committed job was published once, and nothing else was.
        assert sorted(j.id for j in self.publisher.published) == job_ids


def test_random_operations_keep_every_engine_invariant(
    app: App, publisher: RecordingPublisher
) -> None:
    class OnThisDatabase(EngineMachine):
        def __init__(self) -> None:
            super().__init__(app, publisher)

    chosen = SQLITE_SETTINGS if app.db.dialect.name == "sqlite" else POSTGRES_SETTINGS
    run_state_machine_as_test(OnThisDatabase, settings=chosen)


# -- found while writing the model ---------------------------------------------------


def _on_hold(app: App, clerk: Actor, number: str) -> int:
    iid = app.engine.start("order", "order", number, clerk, context={"number": number}).instance_id
    app.engine.fire(iid, "submit", clerk)
    app.engine.fire(iid, "hold", SYSTEM)
    return iid


def test_the_system_cannot_unclaim_a_task_that_nobody_claimed(app: App) -> None:
    """TaskService.unclaim filters on ``assignee_id == actor.user_id``; for the system
    actor that is ``IS NULL``, so an unclaimed task "is unclaimed" and audited."""
    clerk = add_user(app, "clerk")
    iid = _on_hold(app, clerk, "SO-1")
    with app.engine.session_factory() as s:
        task_id = s.execute(select(tasks.c.id).where(tasks.c.instance_id == iid)).scalar_one()
        before = everything(s)
    with pytest.raises(OrderFlowError):
        app.tasks.unclaim(task_id, SYSTEM)
    with app.engine.session_factory() as s:
        assert everything(s) == before


def test_a_late_delivery_of_a_cancelled_job_is_skipped_and_changes_nothing(app: App) -> None:
    """At-least-once delivery: the check job of an earlier visit to 'submitted' arrives
    after hold -> recheck. The runner must skip it, not decide the new visit with an old
    verdict. (Engine.fire itself does not check ``job_id``; the runner does.)"""
    clerk = add_user(app, "clerk")
    iid = app.engine.start("order", "order", "1", clerk, context={"number": "SO-1"}).instance_id
    first_job = app.engine.fire(iid, "submit", clerk).job_ids[0]
    app.engine.fire(iid, "hold", SYSTEM)  # cancels first_job
    app.engine.fire(iid, "recheck", clerk)  # queues a new check job
    with app.engine.session_factory() as s:
        before = everything(s)
    assert run_job(app, first_job) == JobOutcome.SKIPPED
    with app.engine.session_factory() as s:
        assert everything(s) == before
