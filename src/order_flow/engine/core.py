"""The engine: start instances and fire triggers, one transaction per transition.

The hot path uses SQLAlchemy Core on the tables (about 4x less client CPU than
the ORM per transition); the ORM serves the richer reads elsewhere.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, case, func, insert, literal, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, sessionmaker

from order_flow.domain.calendar import BusinessCalendar
from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.definitions import DefinitionStore, LoadedDefinition
from order_flow.engine.publisher import JobRef, NullPublisher, Publisher
from order_flow.engine.registry import Guard, GuardContext, Registry, Step, step_registry
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TransitionNotAllowedError,
)
from order_flow.store.db import insert_ignoring
from order_flow.store.tables import audit, candidates, instances, outbox, rowcount, tasks
from order_flow.store.types import utcnow
from order_flow.workflow.definition import PRIORITIES, StateSpec

#: Queue for the steps of an instance that is not urgent (and for beat's own tasks).
DEFAULT_QUEUE = "default"
#: Steps with a queue of their own, so slow rendering or mail never holds up checks.
STEP_QUEUES = {"invoice.issue": "pdf", "invoice.notify": "email", "notify.order": "email"}
#: Every queue has an urgent lane beside it for the jobs of urgent instances, so an
#: urgent job never waits behind the queue's backlog; workers serve the urgent lanes
#: first and the others a guaranteed share (worker/lanes.py, docs/operations.md).
URGENT_LANES = {DEFAULT_QUEUE: "urgent", "pdf": "urgent.pdf", "email": "urgent.email"}
URGENT_QUEUE = URGENT_LANES[DEFAULT_QUEUE]
#: Every queue a job can be sent to: each urgent lane before its queue.
QUEUES = tuple(q for base, lane in URGENT_LANES.items() for q in (lane, base))
PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}


def queue_for(step: str, priority_rank: int) -> str:
    """The queue of a job: the step's queue, or its urgent lane for an urgent instance."""
    queue = STEP_QUEUES.get(step, DEFAULT_QUEUE)
    return URGENT_LANES[queue] if priority_rank == PRIORITY_RANK["urgent"] else queue


INSTANCE_COLUMNS = (
    instances.c.id,
    instances.c.workflow,
    instances.c.definition_id,
    instances.c.subject_type,
    instances.c.subject_id,
    instances.c.state,
    instances.c.version,
    instances.c.priority,
    instances.c.context,
    instances.c.created_by,
)


@dataclass(frozen=True)
class StateMirror:
    """A copy of the instance's state on its subject's row (e.g. ``orders.state``),
    written in the same transaction as every state change, so that reads over many
    subjects need no join to the instances. Subjects are keyed by an integer ``id``."""

    table: Table
    column: str = "state"
    #: (state, column): the time the instance first entered that state is kept there.
    first_entered: tuple[tuple[str, str], ...] = ()

    def values(self, state: str, now: datetime) -> dict[str, Any]:
        """The subject's columns for an instance that enters ``state`` now: for a
        subject row written after its instance started (bulk intake)."""
        out: dict[str, Any] = {self.column: state}
        out.update({column: now for name, column in self.first_entered if name == state})
        return out

    def write(self, s: Session, subject_ids: Sequence[str], state: str, now: datetime) -> None:
        ids = [int(i) for i in subject_ids if i.isdigit()]  # no row has another id
        if not ids:
            return
        values: dict[str, Any] = {self.column: state}
        for name, column in self.first_entered:
            if name == state:  # the first time only
                col = self.table.c[column]
                values[column] = func.coalesce(col, literal(now, col.type))
        key = self.table.c.id
        where = key == ids[0] if len(ids) == 1 else key.in_(ids)
        s.execute(update(self.table).where(where).values(values))


@dataclass(frozen=True)
class FireResult:
    instance_id: int
    trigger: str
    from_state: str
    to_state: str
    version: int
    task_ids: tuple[int, ...] = ()
    job_ids: tuple[int, ...] = ()


class _Formatter(string.Formatter):
    """str.format that leaves unknown fields visible instead of raising."""

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, str):
            return kwargs.get(key, "{" + key + "}")
        return super().get_value(key, args, kwargs)


_FORMATTER = _Formatter()


def render_title(template: str, values: Mapping[str, Any]) -> str:
    try:
        return _FORMATTER.vformat(template, (), values)[:255]
    except (ValueError, IndexError, AttributeError):
        return template[:255]


@functools.lru_cache(maxsize=256)
def _title_names(template: str) -> tuple[str, ...]:
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return ()
    names = (re.split(r"[.\[]", name, maxsplit=1)[0] for _lit, name, _spec, _conv in parsed if name)
    return tuple(dict.fromkeys(n for n in names if n))


def title_fields(template: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The values a task's title is made from ({number}, {hold_reason}...), kept in the
    task's ``data`` so that reports read them there and never parse the title."""
    found = {n: values[n] for n in _title_names(template) if n in values}
    return found or None


def audit_row(
    instance_id: int | None,
    kind: str,
    trigger: str | None,
    from_state: str | None,
    to_state: str | None,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    task_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The values of one audit event (one row of ``audit_events``)."""
    return dict(
        instance_id=instance_id,
        task_id=task_id,
        kind=kind,
        trigger=trigger,
        from_state=from_state,
        to_state=to_state,
        actor=actor.name,
        acting_for=actor.acting_for,
        reason=reason,
        data=dict(data) if data else None,
        at=now,
    )


@dataclass
class Engine:
    session_factory: sessionmaker[Session]
    guards: Registry[Guard]
    calendar: BusinessCalendar
    publisher: Publisher = field(default_factory=NullPublisher)
    steps: Registry[Step] = field(default_factory=step_registry)
    clock: Callable[[], datetime] = utcnow
    #: subject_type -> where its state is mirrored (none: the instance alone has it).
    mirrors: Mapping[str, StateMirror] = field(default_factory=dict)
    definitions: DefinitionStore = field(init=False)

    def __post_init__(self) -> None:
        self.definitions = DefinitionStore(self.guards)

    # -- units of work -------------------------------------------------------

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.publisher)

    def start(
        self,
        workflow: str,
        subject_type: str,
        subject_id: str,
        actor: Actor,
        context: Mapping[str, Any] | None = None,
        priority: str = "normal",
    ) -> FireResult:
        with self.uow() as uow:
            result = self.start_in(
                uow, workflow, subject_type, subject_id, actor, context=context, priority=priority
            )
            uow.commit()
        return result

    def fire(
        self, instance_id: int, trigger: str, actor: Actor = SYSTEM, **kwargs: Any
    ) -> FireResult:
        with self.uow() as uow:
            result = self.fire_in(uow, instance_id, trigger, actor, **kwargs)
            uow.commit()
        return result

    # -- inside a caller's unit of work -------------------------------------

    def start_in(
        self,
        uow: UnitOfWork,
        workflow: str,
        subject_type: str,
        subject_id: str,
        actor: Actor,
        *,
        context: Mapping[str, Any] | None = None,
        priority: str = "normal",
    ) -> FireResult:
        if priority not in PRIORITY_RANK:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        s = uow.session
        loaded = self.definitions.latest(s, workflow)
        initial = loaded.definition.initial
        now = self.clock()
        instance_id = s.execute(
            insert(instances).returning(instances.c.id),
            dict(
                workflow=workflow,
                definition_id=loaded.id,
                subject_type=subject_type,
                subject_id=str(subject_id),
                state=initial,
                version=1,
                priority=PRIORITY_RANK[priority],
                context=dict(context or {}),
                created_by=actor.name,
                created_at=now,
                updated_at=now,
                entered_at=now,
            ),
        ).scalar_one()
        self.audit(s, instance_id, "start", None, None, initial, actor, None, now)
        self.mirror_state(s, subject_type, [str(subject_id)], initial, now)
        row = self.load(s, instance_id)
        task_ids, job_ids = self._enter(uow, loaded, row, loaded.definition.state(initial), 1, now)
        return FireResult(instance_id, "start", "", initial, 1, task_ids, job_ids)

    def fire_in(
        self,
        uow: UnitOfWork,
        instance_id: int,
        trigger: str,
        actor: Actor = SYSTEM,
        *,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
        context_update: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        job_id: int | None = None,
        audit_data: Mapping[str, Any] | None = None,
        loaded_row: Any = None,
    ) -> FireResult:
        """Check, change state under the optimistic lock, audit, and enter the new state.

        ``loaded_row``: the instance (INSTANCE_COLUMNS) as the caller read it in this
        unit of work, which saves reading it again; the version-checked UPDATE fails
        with ConflictError if it changed since."""
        s = uow.session
        row = self.load(s, instance_id) if loaded_row is None else loaded_row
        if row.id != instance_id:
            raise ValueError(f"loaded_row is instance {row.id}, not {instance_id}")
        if expected_version is not None and row.version != expected_version:
            raise ConflictError(
                f"instance {instance_id} changed: it is at version {row.version}, "
                f"you saw {expected_version}"
            )
        loaded = self.definitions.get(s, row.definition_id)
        options = loaded.candidates(row.state, trigger)
        if not options:
            raise TransitionNotAllowedError(
                f"trigger '{trigger}' is not allowed from state '{row.state}'"
            )
        if not any(actor.may_fire(t.actors) for t in options):
            raise PermissionDeniedError(
                f"role '{actor.role}' may not fire '{trigger}' from '{row.state}'"
            )
        now = self.clock()
        ctx = GuardContext(s, row, trigger, actor, reason, payload or {}, now)
        dest = loaded.route(row.state, trigger, ctx)
        if dest is None:
            failing = sorted({g for t in options for g in self.failing_guards(t, ctx)})
            raise TransitionNotAllowedError(
                f"trigger '{trigger}' refused in state '{row.state}': "
                f"guard(s) {', '.join(failing) or 'none'} not satisfied"
            )
        chosen = next(t for t in options if t.dest == dest and self._guards_hold(t, ctx))
        if not actor.may_fire(chosen.actors):
            raise PermissionDeniedError(f"role '{actor.role}' may not fire '{trigger}' to '{dest}'")

        values: dict[str, Any] = dict(
            state=dest, version=row.version + 1, updated_at=now, entered_at=now
        )
        if context_update:
            values["context"] = {**row.context, **context_update}
        changed = rowcount(
            s.execute(
                update(instances)
                .where(instances.c.id == instance_id, instances.c.version == row.version)
                .values(**values)
            )
        )
        if changed != 1:
            raise ConflictError(f"instance {instance_id} was changed by another transaction")
        if dest != row.state:
            self.mirror_state(s, row.subject_type, [row.subject_id], dest, now)
        if not actor.is_system:  # sign-off rounds read the groups that acted
            audit_data = {**(audit_data or {}), "groups": sorted(actor.groups)}
        if context_update:  # the trail keeps what the transition set (a hold's reason...)
            audit_data = {**(audit_data or {}), "context": dict(context_update)}
        self.audit(
            s,
            instance_id,
            "transition",
            trigger,
            row.state,
            dest,
            actor,
            reason,
            now,
            data=audit_data,
        )
        definition = loaded.definition
        self._leave(s, instance_id, definition.state(row.state), actor, now, job_id)
        from_state, new_version = row.state, row.version + 1
        if context_update:  # task titles read the updated context: the row as written
            written = {c.key: getattr(row, c.key) for c in INSTANCE_COLUMNS}
            row = SimpleNamespace(**{**written, **values})
        task_ids, job_ids = self._enter(uow, loaded, row, definition.state(dest), new_version, now)
        return FireResult(instance_id, trigger, from_state, dest, new_version, task_ids, job_ids)

    def enqueue_in(
        self,
        uow: UnitOfWork,
        instance_id: int,
        step: str,
        payload: Mapping[str, Any],
        key: str,
    ) -> int | None:
        """Queue ``step`` for the instance in its current state, outside any transition
        (a side job such as a customer mail); the job id, or None if ``key`` was queued before.

        The job runs through run_job like a state's step and, like one, is cancelled
        when the instance leaves the state before it ran. ``key`` is the job's unique
        idempotency key, so a step that runs again queues nothing twice.
        """
        if step not in self.steps:
            raise ValueError(f"unknown step '{step}'")
        s = uow.session
        row = self.load(s, instance_id)
        queue = queue_for(step, row.priority)
        now = self.clock()
        values = dict(
            instance_id=instance_id,
            state=row.state,
            step=step,
            queue=queue,
            idempotency_key=key,
            status="pending",
            attempts=0,
            available_at=now,
            created_at=now,
            payload=dict(payload),
        )
        # a concurrent enqueue of the key wins quietly
        stmt = insert_ignoring(s, outbox, values, [outbox.c.idempotency_key])
        job_id = s.execute(stmt.returning(outbox.c.id)).scalar()
        if job_id is None:
            return None
        uow.jobs.append(JobRef(job_id, instance_id, step, queue, key))
        return int(job_id)

    # -- pieces ---------------------------------------------------------------

    def mirror_state(
        self,
        s: Session,
        subject_type: str,
        subject_ids: Sequence[str],
        state: str,
        now: datetime,
    ) -> None:
        """Copy ``state`` onto the subjects' rows, if their type has a mirror."""
        mirror = self.mirrors.get(subject_type)
        if mirror is not None:
            mirror.write(s, subject_ids, state, now)

    def load(self, s: Session, instance_id: int) -> Any:
        """The instance's engine columns, as a Core row."""
        stmt = select(*INSTANCE_COLUMNS).where(instances.c.id == instance_id)
        row = s.execute(stmt).first()
        if row is None:
            raise NotFoundError(f"instance {instance_id} does not exist")
        return row

    def _guards_hold(self, t: Any, ctx: GuardContext) -> bool:
        return not self.failing_guards(t, ctx)

    def failing_guards(self, t: Any, ctx: GuardContext) -> list[str]:
        bad = [g for g in t.conditions if not self.guards[g](ctx)]
        bad += [f"not {g}" for g in t.unless if self.guards[g](ctx)]
        return bad

    def audit(
        self,
        s: Session,
        instance_id: int | None,
        kind: str,
        trigger: str | None,
        from_state: str | None,
        to_state: str | None,
        actor: Actor,
        reason: str | None,
        now: datetime,
        task_id: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        s.execute(
            insert(audit),
            audit_row(instance_id, kind, trigger, from_state, to_state, actor, now,
                      reason=reason, task_id=task_id, data=data),
        )  # fmt: skip

    def _leave(
        self,
        s: Session,
        instance_id: int,
        spec: StateSpec,
        actor: Actor,
        now: datetime,
        job_id: int | None,
    ) -> None:
        """Close what the old state opened: its tasks and its unfinished jobs.

        Two statements in the usual case (a step's state, left by its own job): the
        open tasks cancelled (their candidates only when there were some), and the
        instance's open jobs ended in one UPDATE, the firing job ``done`` and the
        others ``cancelled``."""
        if spec.task is not None or spec.step is not None:
            closed = list(
                s.scalars(
                    update(tasks)
                    .where(tasks.c.instance_id == instance_id, tasks.c.status == "open")
                    .values(status="cancelled", closed_at=now, closed_by=actor.name)
                    .returning(tasks.c.id)
                )
            )
            if closed:
                s.execute(
                    update(candidates)
                    .where(candidates.c.task_id.in_(closed))
                    .values(unclaimed=False)
                )
        open_jobs = (outbox.c.instance_id == instance_id) & outbox.c.status.in_(
            ("pending", "published")
        )
        if spec.step is not None:
            status: Any = "cancelled"
            if job_id is not None:
                status = case((outbox.c.id == job_id, "done"), else_="cancelled")
            ended = set(
                s.scalars(
                    update(outbox)
                    .where(open_jobs)
                    .values(status=status, finished_at=now)
                    .returning(outbox.c.id)
                )
            )
            if job_id is not None and job_id not in ended:
                raise ConflictError(f"job {job_id} is not an open job of instance {instance_id}")
        elif job_id is not None:
            done = s.execute(
                update(outbox)
                .where(open_jobs, outbox.c.id == job_id)
                .values(status="done", finished_at=now)
            )
            if rowcount(done) != 1:
                raise ConflictError(f"job {job_id} is not an open job of instance {instance_id}")

    def _enter(
        self,
        uow: UnitOfWork,
        loaded: LoadedDefinition,
        row: Row[Any],
        spec: StateSpec,
        version: int,
        now: datetime,
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        s = uow.session
        task_ids: tuple[int, ...] = ()
        job_ids: tuple[int, ...] = ()
        if spec.task is not None:
            t = spec.task
            rank = row.priority if t.priority not in PRIORITY_RANK else PRIORITY_RANK[t.priority]
            due = self.calendar.add(now, t.sla) if t.sla else None
            follow = self.calendar.add(now, t.follow_up) if t.follow_up else None
            values = {
                **row.context,
                "instance_id": row.id,
                "state": spec.name,
                "subject_id": row.subject_id,
            }
            task_id = s.execute(
                insert(tasks).returning(tasks.c.id),
                dict(
                    instance_id=row.id,
                    state=spec.name,
                    kind="human",
                    title=render_title(t.title, values),
                    data=title_fields(t.title, values),
                    status="open",
                    priority=rank,
                    due_at=due,
                    follow_up_at=follow,
                    outcomes=dict(t.outcomes),
                    created_at=now,
                ),
            ).scalar_one()
            s.execute(
                insert(candidates),
                [
                    dict(task_id=task_id, group_name=g, priority=rank, due_at=due, unclaimed=True)
                    for g in t.candidates
                ],
            )
            task_ids = (task_id,)
        if spec.step is not None:
            queue = queue_for(spec.step, row.priority)
            key = f"{row.id}:{version}:{spec.step}"
            job_id = s.execute(
                insert(outbox).returning(outbox.c.id),
                dict(
                    instance_id=row.id,
                    state=spec.name,
                    step=spec.step,
                    queue=queue,
                    idempotency_key=key,
                    status="pending",
                    attempts=0,
                    available_at=now,
                    created_at=now,
                    payload={},
                ),
            ).scalar_one()
            uow.jobs.append(JobRef(job_id, row.id, spec.step, queue, key))
            job_ids = (job_id,)
        return task_ids, job_ids
