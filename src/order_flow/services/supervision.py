"""What a supervisor looks at and does: workload, bulk reassignment, delegation, backlog
with a time-to-drain forecast, incidents grouped by error, and stuck instances.

Reads are plain queries; every write goes through TaskService (one unit of work per
bulk action) or the outbox's incident functions, so the audit trail is the same as for
single actions.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from order_flow.engine.actors import Actor
from order_flow.engine.outbox import republish_after, retry_incident
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import (
    ConflictError,
    NotFoundError,
    OrderFlowError,
    PermissionDeniedError,
    ValidationError,
)
from order_flow.services.delegation import audit_delegate, away_now
from order_flow.store.tables import (
    audit,
    candidates,
    instances,
    outbox,
    tasks,
    user_groups,
    users,
)

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Throughput is measured over this many recent hours.
THROUGHPUT_HOURS = 24
#: A due job still pending this long after it became due counts as stuck.
PENDING_STUCK_AFTER = timedelta(minutes=5)
#: Age buckets of the backlog (upper bounds; the last is open-ended).
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("<1h", timedelta(hours=1)),
    ("1-4h", timedelta(hours=4)),
    ("4-24h", timedelta(days=1)),
    (">1d", None),
)
MAX_BULK = 500


@dataclass(frozen=True)
class Workload:
    user_id: int
    username: str
    display_name: str
    role: str
    groups: frozenset[str]
    claimed: int  # open tasks assigned to them
    available: int  # open unclaimed tasks in their groups
    breached: int  # of the claimed ones, past their SLA
    oldest: datetime | None  # creation of their oldest claimed task
    away_until: datetime | None = None
    substitute: str | None = None


@dataclass(frozen=True)
class TaskLine:
    id: int
    instance_id: int
    title: str
    state: str
    kind: str
    priority: int
    due_at: datetime | None
    created_at: datetime
    assignee_id: int | None
    assignee: str | None
    groups: frozenset[str]
    status: str = "open"


@dataclass(frozen=True)
class Move:
    task: TaskLine
    to_id: int | None  # who gets it (the substitute when the target is away)
    to_name: str | None
    acting_for: str | None  # the away clerk, when a substitute takes it
    problem: str | None  # why it cannot move; None when it can


@dataclass(frozen=True)
class Preview:
    moves: list[Move]

    @property
    def movable(self) -> list[Move]:
        return [m for m in self.moves if m.problem is None]

    def expected(self) -> dict[int, int | None]:
        """task id -> the assignee seen now, for the confirm step to re-check."""
        return {m.task.id: m.task.assignee_id for m in self.movable}


@dataclass(frozen=True)
class BacklogRow:
    workflow: str
    state: str
    label: str
    count: int
    ages: dict[str, int]
    oldest: datetime | None
    left_last_hours: int  # instances that left the state within THROUGHPUT_HOURS
    per_hour: float
    drain_hours: float | None  # None: nothing left the state recently


@dataclass(frozen=True)
class IncidentGroup:
    step: str
    error: str  # the error with numbers and ids folded, so alike failures group
    count: int
    task_ids: list[int]
    oldest: datetime
    sample: str


@dataclass(frozen=True)
class Stuck:
    kind: str  # "task_sla", "job_lost", "job_waiting", "job_failed"
    instance_id: int
    workflow: str
    subject_id: str
    state: str
    since: datetime
    detail: str
    task_id: int | None = None
    job_id: int | None = None


@dataclass
class RetryReport:
    retried: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def error_key(error: str) -> str:
    """Fold ids, numbers and quoted values so the same failure on many jobs groups."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", error or "")
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:200]


class SupervisionService:
    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def _now(self) -> datetime:
        now: datetime = self.app.engine.clock()
        return now

    # -- workload ------------------------------------------------------------------------

    def workload(self) -> list[Workload]:
        now = self._now
        with self.app.engine.session_factory() as s:
            people = s.execute(
                select(users.c.id, users.c.username, users.c.display_name, users.c.role)
                .where(users.c.active.is_(True))
                .order_by(users.c.username)
            ).all()
            groups: dict[int, set[str]] = defaultdict(set)
            for uid, g in s.execute(select(user_groups.c.user_id, user_groups.c.group_name)):
                groups[uid].add(g)
            open_assigned = (tasks.c.status == "open") & tasks.c.assignee_id.is_not(None)
            claimed = {
                r.assignee_id: r
                for r in s.execute(
                    select(
                        tasks.c.assignee_id,
                        func.count().label("n"),
                        func.count().filter(tasks.c.due_at < now).label("breached"),
                        func.min(tasks.c.created_at).label("oldest"),
                    )
                    .where(open_assigned)
                    .group_by(tasks.c.assignee_id)
                )
            }
            per_group: dict[str, set[int]] = defaultdict(set)
            for task_id, g in s.execute(
                select(candidates.c.task_id, candidates.c.group_name).where(
                    candidates.c.unclaimed.is_(True)
                )
            ):
                per_group[g].add(task_id)
            away = away_now(s, now)
        out = []
        for p in people:
            mine = claimed.get(p.id)
            available: set[int] = set()
            for g in groups[p.id]:
                available |= per_group.get(g, set())
            sub = away.get(p.id)
            out.append(
                Workload(
                    p.id,
                    p.username,
                    p.display_name or p.username,
                    p.role,
                    frozenset(groups[p.id]),
                    int(mine.n) if mine else 0,
                    len(available),
                    int(mine.breached) if mine else 0,
                    mine.oldest if mine else None,
                    sub.until if sub else None,
                    sub.substitute if sub else None,
                )
            )
        return out

    def open_tasks(
        self,
        *,
        assignee_id: int | None = None,
        task_ids: Iterable[int] | None = None,
        group: str | None = None,
        overdue: bool = False,
        limit: int = MAX_BULK,
    ) -> list[TaskLine]:
        with self.app.engine.session_factory() as s:
            return self._lines(
                s,
                assignee_id=assignee_id,
                task_ids=task_ids,
                group=group,
                overdue=overdue,
                limit=limit,
            )

    def _lines(
        self,
        s: Session,
        *,
        assignee_id: int | None = None,
        task_ids: Iterable[int] | None = None,
        group: str | None = None,
        overdue: bool = False,
        limit: int = MAX_BULK,
        open_only: bool = True,
    ) -> list[TaskLine]:
        stmt = select(
            tasks.c.id,
            tasks.c.instance_id,
            tasks.c.title,
            tasks.c.state,
            tasks.c.kind,
            tasks.c.priority,
            tasks.c.due_at,
            tasks.c.created_at,
            tasks.c.assignee_id,
            users.c.username,
            tasks.c.status,
        ).outerjoin(users, users.c.id == tasks.c.assignee_id)
        if open_only:
            stmt = stmt.where(tasks.c.status == "open")
        if assignee_id is not None:
            stmt = stmt.where(tasks.c.assignee_id == assignee_id)
        if task_ids is not None:
            stmt = stmt.where(tasks.c.id.in_(list(task_ids)))
        if group:
            stmt = stmt.where(
                tasks.c.id.in_(select(candidates.c.task_id).where(candidates.c.group_name == group))
            )
        if overdue:
            stmt = stmt.where(tasks.c.due_at < self._now)
        rows = list(
            s.execute(stmt.order_by(tasks.c.priority, tasks.c.due_at, tasks.c.id).limit(limit))
        )
        groups: dict[int, set[str]] = defaultdict(set)
        if rows:
            for tid, g in s.execute(
                select(candidates.c.task_id, candidates.c.group_name).where(
                    candidates.c.task_id.in_([r.id for r in rows])
                )
            ):
                groups[tid].add(g)
        return [
            TaskLine(
                r.id,
                r.instance_id,
                r.title,
                r.state,
                r.kind,
                r.priority,
                r.due_at,
                r.created_at,
                r.assignee_id,
                r.username,
                frozenset(groups[r.id]),
                r.status,
            )
            for r in rows
        ]

    # -- reassigning ---------------------------------------------------------------------

    def preview_reassign(self, task_ids: Sequence[int], to_user_id: int, actor: Actor) -> Preview:
        """What a bulk reassign would do, task by task; changes nothing."""
        _require_supervisor(actor)
        if not task_ids:
            raise ValidationError({"task_ids": "select at least one task"})
        if len(task_ids) > MAX_BULK:
            raise ValidationError({"task_ids": f"at most {MAX_BULK} tasks at once"})
        with self.app.engine.session_factory() as s:
            return Preview(self._plan(s, task_ids, to_user_id))

    def _plan(self, s: Session, task_ids: Sequence[int], to_user_id: int) -> list[Move]:
        target = s.execute(
            select(users.c.id, users.c.username, users.c.active).where(users.c.id == to_user_id)
        ).first()
        if target is None or not target.active:
            raise ValidationError({"assignee_id": "no such active user"})
        to_id, to_name, acting_for = target.id, target.username, None
        sub = away_now(s, self._now).get(target.id)
        if sub is not None:
            to_id, to_name, acting_for = sub.substitute_id, sub.substitute, target.username
        to_groups = set(
            s.scalars(select(user_groups.c.group_name).where(user_groups.c.user_id == to_id))
        )
        found = {t.id: t for t in self._lines(s, task_ids=task_ids, open_only=False)}
        moves = []
        for tid in dict.fromkeys(task_ids):
            line = found.get(tid)
            if line is None:
                continue  # unknown ids are dropped, never reported by name
            problem = None
            if line.status != "open":
                problem = "task is not open"
            elif line.groups and to_groups.isdisjoint(line.groups):
                problem = f"{to_name} is in none of the task's groups"
            elif line.assignee_id == to_id:
                problem = f"already with {to_name}"
            moves.append(Move(line, to_id, to_name, acting_for, problem))
        return moves

    def bulk_reassign(
        self,
        expected: Mapping[int, int | None],
        to_user_id: int,
        actor: Actor,
    ) -> int:
        """Move the previewed tasks in one transaction, or none of them.

        ``expected`` maps each task id to the assignee the preview showed; a task that
        closed or moved since the preview refuses the whole batch (ConflictError).
        """
        _require_supervisor(actor)
        if not expected:
            raise ValidationError({"task_ids": "select at least one task"})
        with self.app.engine.uow() as uow:
            s = uow.session
            moves = self._plan(s, list(expected), to_user_id)
            changed = [
                m.task.id
                for m in moves
                if m.problem is not None or m.task.assignee_id != expected.get(m.task.id)
            ]
            if changed or len(moves) != len(expected):
                raise ConflictError(
                    f"{len(changed) or len(expected) - len(moves)} task(s) changed since the "
                    "preview; look again"
                )
            for m in moves:
                self._move_in(uow, m, actor)
            uow.commit()
        return len(moves)

    def reassign(self, task_id: int, to_user_id: int, actor: Actor) -> Move:
        """One task to one person (their substitute while they are away)."""
        _require_supervisor(actor)
        with self.app.engine.uow() as uow:
            moves = self._plan(uow.session, [task_id], to_user_id)
            if not moves:
                raise NotFoundError(f"task {task_id} does not exist")
            if moves[0].problem is not None:
                raise ValidationError({"assignee_id": moves[0].problem})
            self._move_in(uow, moves[0], actor)
            uow.commit()
        return moves[0]

    def _move_in(self, uow: UnitOfWork, move: Move, actor: Actor) -> None:
        assert move.to_id is not None
        self.app.tasks.reassign_in(uow, move.task.id, move.to_id, actor)
        if move.acting_for:
            t = move.task
            audit_delegate(
                self.app,
                uow.session,
                t.id,
                t.instance_id,
                t.state,
                move.to_name or "",
                move.acting_for,
                self._now,
            )

    def unassign(self, task_id: int, actor: Actor) -> None:
        self.app.tasks.unassign(task_id, actor)

    # -- backlog and forecast ------------------------------------------------------------

    def backlog(self, hours: int = THROUGHPUT_HOURS, lang: str = "zh") -> list[BacklogRow]:
        now = self._now
        since = now - timedelta(hours=hours)
        with self.app.engine.session_factory() as s:
            finals, labels = self._state_info(s, lang)
            rows = s.execute(
                select(instances.c.workflow, instances.c.state, instances.c.entered_at)
            ).all()
            left = dict(
                ((w, st), int(n))
                for w, st, n in s.execute(
                    select(instances.c.workflow, audit.c.from_state, func.count())
                    .join(instances, instances.c.id == audit.c.instance_id)
                    .where(
                        audit.c.kind == "transition",
                        audit.c.at >= since,
                        audit.c.from_state != audit.c.to_state,
                    )
                    .group_by(instances.c.workflow, audit.c.from_state)
                )
            )
        grouped: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for w, st, entered in rows:
            if (w, st) not in finals:
                grouped[(w, st)].append(entered)
        out = []
        for (w, st), entered in sorted(grouped.items()):
            ages = {name: 0 for name, _ in AGE_BUCKETS}
            for at in entered:
                ages[_bucket(now - at)] += 1
            n_left = left.get((w, st), 0)
            per_hour = n_left / hours
            drain = len(entered) / per_hour if per_hour else None
            out.append(
                BacklogRow(
                    w,
                    st,
                    labels.get((w, st), st),
                    len(entered),
                    ages,
                    min(entered),
                    n_left,
                    per_hour,
                    drain,
                )
            )
        return out

    def _state_info(
        self, s: Session, lang: str
    ) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
        finals: set[tuple[str, str]] = set()
        labels: dict[tuple[str, str], str] = {}
        names = s.scalars(select(instances.c.workflow).distinct())
        for name in names:
            try:
                definition = self.app.engine.definitions.latest(s, name).definition
            except OrderFlowError:
                continue
            for st in definition.states:
                labels[(name, st.name)] = st.display(lang)
                if st.final:
                    finals.add((name, st.name))
        return finals, labels

    # -- incidents -------------------------------------------------------------------------

    def incident_groups(self) -> list[IncidentGroup]:
        with self.app.engine.session_factory() as s:
            rows = s.execute(
                select(tasks.c.id, tasks.c.data, tasks.c.created_at)
                .where(tasks.c.kind == "incident", tasks.c.status == "open")
                .order_by(tasks.c.id)
            ).all()
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for r in rows:
            data = r.data or {}
            groups[(str(data.get("step", "")), error_key(str(data.get("error", ""))))].append(r)
        out = [
            IncidentGroup(
                step,
                key,
                len(items),
                [i.id for i in items],
                min(i.created_at for i in items),
                str((items[0].data or {}).get("error", "")),
            )
            for (step, key), items in groups.items()
        ]
        return sorted(out, key=lambda g: (-g.count, g.oldest))

    def retry_incidents(self, task_ids: Iterable[int], actor: Actor) -> RetryReport:
        """Retry each incident (each in its own transaction); report what failed and why."""
        _require_supervisor(actor)
        report = RetryReport()
        for task_id in dict.fromkeys(task_ids):
            try:
                retry_incident(self.app, task_id, actor, "bulk retry")
                report.retried.append(task_id)
            except OrderFlowError as exc:
                report.failed[task_id] = str(exc)
        return report

    # -- stuck -----------------------------------------------------------------------------

    def stuck(self, limit: int = 200) -> list[Stuck]:
        now = self._now
        inst = select(
            instances.c.id, instances.c.workflow, instances.c.subject_id, instances.c.state
        )
        with self.app.engine.session_factory() as s:
            late_tasks = s.execute(
                select(tasks.c.id, tasks.c.instance_id, tasks.c.due_at, tasks.c.title)
                .where(tasks.c.status == "open", tasks.c.due_at < now)
                .order_by(tasks.c.due_at)
                .limit(limit)
            ).all()
            lost = (outbox.c.status == "published") & (
                outbox.c.published_at < now - republish_after(self.app)
            )
            waiting = (outbox.c.status == "pending") & (
                outbox.c.available_at < now - PENDING_STUCK_AFTER
            )
            jobs = s.execute(
                select(
                    outbox.c.id,
                    outbox.c.instance_id,
                    outbox.c.step,
                    outbox.c.status,
                    outbox.c.available_at,
                    outbox.c.published_at,
                    outbox.c.attempts,
                    outbox.c.last_error,
                )
                .where(or_(lost, waiting))
                .order_by(outbox.c.available_at)
                .limit(limit)
            ).all()
            ids = {r.instance_id for r in late_tasks} | {j.instance_id for j in jobs}
            info = {r.id: r for r in s.execute(inst.where(instances.c.id.in_(ids)))} if ids else {}
        out: list[Stuck] = []
        for j in jobs:
            i = info[j.instance_id]
            kind = "job_lost" if j.status == "published" else "job_waiting"
            since = j.published_at if j.status == "published" else j.available_at
            detail = f"{j.step} · {j.attempts} attempt(s)" + (
                f" · {j.last_error}" if j.last_error else ""
            )
            out.append(
                Stuck(kind, i.id, i.workflow, i.subject_id, i.state, since, detail, job_id=j.id)
            )
        for t in late_tasks:
            i = info[t.instance_id]
            out.append(
                Stuck("task_sla", i.id, i.workflow, i.subject_id, i.state, t.due_at, t.title, t.id)
            )
        return out


def _bucket(age: timedelta) -> str:
    for name, bound in AGE_BUCKETS:
        if bound is None or age < bound:
            return name
    return AGE_BUCKETS[-1][0]


def _require_supervisor(actor: Actor) -> None:
    if not actor.is_supervisor:
        raise PermissionDeniedError("only a supervisor may do that")
