"""The clerk's queues: mine, my groups' unclaimed, follow-ups, problems, done; claim next.

The group queue is a UNION of one indexed ``LIMIT`` branch per group over the
partial index ``ix_task_candidates_inbox`` (see docs: PERFORMANCE, the inbox
query): an ``OR`` over groups cannot read the index in order. Rows are found
first (ids only) and dressed with numbers and customers for at most ``limit`` ids.

Claim next and the "next task" offer skip a task the clerk could not complete: one
whose every working outcome a guard or the clerk's role refuses (say the second
approval of a double review for the clerk who gave the first). Only the few
candidates claim next looks at anyway are evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, exists, func, literal, or_, select, union, union_all
from sqlalchemy.orm import Session, aliased

from order_flow.engine.actors import Actor
from order_flow.errors import NotFoundError, PermissionDeniedError, TaskStateError
from order_flow.services.refusals import Refusal, completable_in, refusal_in
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order
from order_flow.store.tables import candidates, instances, tasks, users

if TYPE_CHECKING:
    from order_flow.bootstrap import App

QUEUES = ("mine", "group", "followup", "problem", "done")
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
#: Less than this before the SLA runs out counts as "at risk" for claim next.
AT_RISK = timedelta(hours=1)
#: Counts stop here; the badge shows "1000+" rather than scanning a huge backlog.
COUNT_CAP = 1000
#: Claim next tries this many candidates when others win the race for them.
CLAIM_ATTEMPTS = 5


_order = aliased(Order, name="direct_order")
_inv_order = aliased(Order, name="invoice_order")


@dataclass(frozen=True)
class InboxFilter:
    customer: str = ""
    priority: str = ""
    step: str = ""
    overdue: bool = False
    q: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> InboxFilter:
        priority = str(args.get("priority") or "")
        return cls(
            customer=str(args.get("customer") or "").strip()[:100],
            priority=priority if priority in PRIORITY_RANK else "",
            step=str(args.get("step") or "").strip()[:64],
            overdue=str(args.get("overdue") or "") in ("1", "on", "true", "yes"),
            q=str(args.get("q") or "").strip()[:100],
        )

    def active(self) -> bool:
        return bool(self.customer or self.priority or self.step or self.overdue or self.q)

    def as_args(self) -> dict[str, str]:
        out = {"customer": self.customer, "priority": self.priority, "step": self.step}
        out.update(q=self.q, overdue="1" if self.overdue else "")
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class InboxRow:
    task_id: int
    instance_id: int
    workflow: str
    title: str
    kind: str
    state: str
    status: str
    priority: int
    due_at: datetime | None
    follow_up_at: datetime | None
    created_at: datetime
    closed_at: datetime | None
    outcome: str | None
    assignee_id: int | None
    assignee: str | None
    subject_type: str
    subject_id: int | None
    number: str
    customer_id: int | None
    customer_name: str
    step_label: str


class InboxService:
    def __init__(self, app: App) -> None:
        self.app = app

    # -- queues -------------------------------------------------------------------------

    def queue(
        self,
        actor: Actor,
        name: str,
        flt: InboxFilter | None = None,
        limit: int = 50,
        lang: str = "zh",
    ) -> list[InboxRow]:
        if name not in QUEUES:
            raise NotFoundError(f"no queue '{name}'")
        flt = flt or InboxFilter()
        limit = max(1, min(limit, 200))
        with self.app.engine.session_factory() as s:
            ids = self._ids(s, actor, name, flt, limit)
            rows = self._dress(s, ids, lang)
        if name == "done":
            return rows
        return sorted(rows, key=_queue_order)

    def counts(self, actor: Actor) -> dict[str, int]:
        """Rows per queue, capped at COUNT_CAP: one statement of a count per queue (one
        round trip for the five; each count is planned on its own)."""
        counts = [
            select(func.count())
            .select_from(self._ids_stmt(actor, name, InboxFilter(), COUNT_CAP).subquery())
            .scalar_subquery()
            .label(name)
            for name in QUEUES
        ]
        with self.app.engine.session_factory() as s:
            row = s.execute(select(*counts)).one()
        return {name: int(row._mapping[name] or 0) for name in QUEUES}

    def _ids(self, s: Session, actor: Actor, name: str, flt: InboxFilter, limit: int) -> list[int]:
        return list(s.scalars(self._ids_stmt(actor, name, flt, limit)))

    def _ids_stmt(self, actor: Actor, name: str, flt: InboxFilter, limit: int) -> Select[Any]:
        now = self.app.engine.clock()
        if name == "mine":
            stmt = self._filtered(select(tasks.c.id), flt, now).where(
                tasks.c.status == "open", tasks.c.assignee_id == actor.user_id
            )
            return stmt.order_by(tasks.c.priority, tasks.c.due_at.asc().nulls_last()).limit(limit)
        if name == "group":
            return self._group_ids(actor, flt, now, limit)
        if name == "done":
            stmt = self._filtered(select(tasks.c.id), flt, now).where(
                tasks.c.status == "completed", tasks.c.closed_by == actor.name
            )
            return stmt.order_by(tasks.c.closed_at.desc(), tasks.c.id.desc()).limit(limit)
        # Follow-ups and problems are small sets; one query with a visibility test.
        stmt = self._filtered(select(tasks.c.id), flt, now).where(
            tasks.c.status == "open", self._visible(actor)
        )
        if name == "followup":
            stmt = stmt.where(tasks.c.follow_up_at.is_not(None), tasks.c.follow_up_at <= now)
            return stmt.order_by(tasks.c.follow_up_at, tasks.c.id).limit(limit)
        problem = or_(
            tasks.c.kind == "incident",
            and_(instances.c.workflow == "invoice", tasks.c.state == "problem"),
        )
        if not _joins_instances(flt):
            stmt = stmt.join(instances, instances.c.id == tasks.c.instance_id)
        # The first clause changes no result; it lets the partial index
        # ix_tasks_open_problem narrow the open tasks before the join.
        stmt = stmt.where(or_(tasks.c.kind == "incident", tasks.c.state == "problem"), problem)
        return stmt.order_by(tasks.c.priority, tasks.c.due_at.asc().nulls_last()).limit(limit)

    def _group_ids(self, actor: Actor, flt: InboxFilter, now: datetime, limit: int) -> Select[Any]:
        groups = sorted(actor.groups)
        if not groups:
            return select(tasks.c.id).where(literal(False))
        branches = []
        for group in groups:
            b = select(candidates.c.task_id, candidates.c.priority, candidates.c.due_at).where(
                candidates.c.group_name == group, candidates.c.unclaimed
            )
            if flt.active():
                b = self._filtered(b.join(tasks, tasks.c.id == candidates.c.task_id), flt, now)
            b = b.order_by(candidates.c.priority, candidates.c.due_at.asc().nulls_last())
            branches.append(b.limit(limit).subquery().select())
        # UNION, not UNION ALL: a task offered to two of my groups shows once.
        merged = union(*branches).subquery() if len(branches) > 1 else branches[0].subquery()
        return (
            select(merged.c.task_id)
            .order_by(merged.c.priority, merged.c.due_at.asc().nulls_last(), merged.c.task_id)
            .limit(limit)
        )

    def _visible(self, actor: Actor) -> Any:
        if actor.is_supervisor:
            return literal(True)
        mine = tasks.c.assignee_id == actor.user_id
        # EXISTS probes the candidates' primary key per task; IN (subquery) made
        # PostgreSQL scan every candidate row at scale (bench/inbox).
        offered = exists().where(
            candidates.c.task_id == tasks.c.id,
            candidates.c.group_name.in_(sorted(actor.groups)),
        )
        return or_(mine, offered)

    def _filtered(self, stmt: Select[Any], flt: InboxFilter, now: datetime) -> Select[Any]:
        if flt.priority:
            stmt = stmt.where(tasks.c.priority == PRIORITY_RANK[flt.priority])
        if flt.step:
            stmt = stmt.where(tasks.c.state == flt.step)
        if flt.overdue:
            stmt = stmt.where(tasks.c.due_at.is_not(None), tasks.c.due_at < now)
        if not (flt.customer or flt.q):
            return stmt
        stmt = stmt.join(instances, instances.c.id == tasks.c.instance_id)
        stmt = stmt.outerjoin(_order, _order.instance_id == instances.c.id)
        stmt = stmt.outerjoin(Invoice, Invoice.instance_id == instances.c.id)
        stmt = stmt.outerjoin(_inv_order, _inv_order.id == Invoice.order_id)
        stmt = stmt.outerjoin(
            Customer, Customer.id == func.coalesce(_order.customer_id, _inv_order.customer_id)
        )
        if flt.customer:
            term = flt.customer
            stmt = stmt.where(
                or_(
                    Customer.name.contains(term, autoescape=True),
                    Customer.code.icontains(term, autoescape=True),
                )
            )
        if flt.q:
            term = flt.q
            stmt = stmt.where(
                or_(
                    tasks.c.title.contains(term, autoescape=True),
                    _order.number.icontains(term, autoescape=True),
                    Customer.name.contains(term, autoescape=True),
                )
            )
        return stmt

    def _dress(self, s: Session, ids: Sequence[int], lang: str = "zh") -> list[InboxRow]:
        """Numbers, customers and assignees for a page of task ids."""
        if not ids:
            return []
        customer_id = func.coalesce(_order.customer_id, _inv_order.customer_id)
        stmt = (
            select(
                tasks,
                instances.c.workflow,
                instances.c.definition_id,
                instances.c.subject_type,
                instances.c.subject_id,
                _order.number.label("order_number"),
                Invoice.id.label("invoice_id"),
                Invoice.series,
                Invoice.number.label("invoice_number"),
                _inv_order.number.label("invoice_order_number"),
                customer_id.label("customer_id"),
                Customer.name.label("customer_name"),
                users.c.username.label("assignee"),
            )
            .join(instances, instances.c.id == tasks.c.instance_id)
            .outerjoin(_order, _order.instance_id == instances.c.id)
            .outerjoin(Invoice, Invoice.instance_id == instances.c.id)
            .outerjoin(_inv_order, _inv_order.id == Invoice.order_id)
            .outerjoin(Customer, Customer.id == customer_id)
            .outerjoin(users, users.c.id == tasks.c.assignee_id)
            .where(tasks.c.id.in_(list(ids)))
        )
        by_id = {
            r.id: _row(r, self._label(s, r.definition_id, r.state, lang)) for r in s.execute(stmt)
        }
        return [by_id[i] for i in ids if i in by_id]

    def rows(self, ids: Sequence[int], lang: str = "zh") -> list[InboxRow]:
        """The inbox rows of these task ids (no visibility check: pass ids you found)."""
        with self.app.engine.session_factory() as s:
            return self._dress(s, ids, lang)

    def _label(self, s: Session, definition_id: int, state: str, lang: str) -> str:
        try:
            spec = self.app.engine.definitions.get(s, definition_id).definition.state(state)
        except KeyError:
            return state
        return spec.display(lang)

    # -- claim next -----------------------------------------------------------------------

    def next_candidates(self, actor: Actor, limit: int = CLAIM_ATTEMPTS) -> list[int]:
        """Unclaimed tasks of my groups, most urgent first: SLA at risk or breached
        (soonest due first), then priority, then age."""
        if not actor.groups:
            return []
        now = self.app.engine.clock()
        branches = []
        for group in sorted(actor.groups):
            for rank in PRIORITY_RANK.values():  # (group, priority) reads the index by due_at
                branches.append(
                    select(candidates.c.task_id, candidates.c.priority, candidates.c.due_at)
                    .where(
                        candidates.c.group_name == group,
                        candidates.c.unclaimed,
                        candidates.c.priority == rank,
                    )
                    .order_by(candidates.c.due_at.asc().nulls_last())
                    .limit(limit)
                    .subquery()
                    .select()
                )
        merged = union_all(*branches).subquery()
        with self.app.engine.session_factory() as s:
            found = s.execute(
                select(merged.c.task_id, merged.c.priority, merged.c.due_at, tasks.c.created_at)
                .join(tasks, tasks.c.id == merged.c.task_id)
                .distinct()
            ).all()
        risk = now + AT_RISK

        def urgency(r: Any) -> tuple[Any, ...]:
            at_risk = r.due_at is not None and r.due_at <= risk
            return (
                0 if at_risk else 1,
                r.due_at if at_risk else now,
                r.priority,
                r.created_at,
                r.task_id,
            )

        ordered = sorted(found, key=urgency)
        return list(dict.fromkeys(r.task_id for r in ordered))[:limit]

    def refusal(
        self, task_id: int, outcome: str, actor: Actor, reason: str | None
    ) -> Refusal | None:
        """Why ``actor`` may not complete the task with ``outcome`` now (None: they may)."""
        with self.app.engine.session_factory() as s:
            row = s.execute(
                select(tasks.c.instance_id, tasks.c.outcomes).where(tasks.c.id == task_id)
            ).first()
            if row is None:
                raise NotFoundError(f"task {task_id} does not exist")
            trigger = (row.outcomes or {}).get(outcome)
            if trigger is None:
                return Refusal()
            return refusal_in(self.app, s, row.instance_id, trigger, actor, reason)

    def completable(self, actor: Actor, ids: Sequence[int]) -> list[int]:
        """The tasks among ``ids`` (order kept) that ``actor`` could complete: some
        working outcome passes the role and guards, a reason taken as given."""
        if not ids:
            return []
        out = []
        with self.app.engine.session_factory() as s:
            rows = s.execute(
                select(tasks.c.id, tasks.c.instance_id, tasks.c.kind, tasks.c.outcomes).where(
                    tasks.c.id.in_(list(ids))
                )
            ).all()
            by_id = {r.id: r for r in rows}
            for task_id in ids:
                r = by_id.get(task_id)
                if r is not None and completable_in(self.app, s, r, actor):
                    out.append(task_id)
        return out

    def next_for(self, actor: Actor, limit: int = CLAIM_ATTEMPTS) -> list[int]:
        """The most urgent candidates (next_candidates) that ``actor`` could complete."""
        return self.completable(actor, self.next_candidates(actor))[:limit]

    def claim_next(self, actor: Actor) -> int | None:
        """Claim the most urgent task I may take and could complete; a task another
        clerk wins is skipped."""
        if actor.user_id is None:
            raise PermissionDeniedError("only a user can claim a task")
        for _round in range(2):
            ids = self.next_for(actor)
            if not ids:
                return None
            for task_id in ids:
                try:
                    self.app.tasks.claim(task_id, actor)
                except (TaskStateError, NotFoundError, PermissionDeniedError):
                    continue  # lost the race (or it closed meanwhile): take the next one
                return task_id
        return None


def _joins_instances(flt: InboxFilter) -> bool:
    return bool(flt.customer or flt.q)


def _queue_order(row: InboxRow) -> tuple[Any, ...]:
    far = datetime.max.replace(tzinfo=row.created_at.tzinfo)
    return (row.priority, row.due_at or far, row.task_id)


def _row(r: Any, step_label: str) -> InboxRow:
    subject_id = int(r.subject_id) if str(r.subject_id).isdigit() else None
    if r.workflow == "invoice":
        number = (
            f"{r.series}-{r.invoice_number:08d}"
            if r.invoice_number is not None
            else (r.invoice_order_number or "")
        )
        subject_type, subject = "invoice", r.invoice_id or subject_id
    else:
        number, subject_type, subject = r.order_number or "", r.subject_type, subject_id
    return InboxRow(
        task_id=r.id,
        instance_id=r.instance_id,
        workflow=r.workflow,
        title=r.title,
        kind=r.kind,
        state=r.state,
        status=r.status,
        priority=r.priority,
        due_at=r.due_at,
        follow_up_at=r.follow_up_at,
        created_at=r.created_at,
        closed_at=r.closed_at,
        outcome=r.outcome,
        assignee_id=r.assignee_id,
        assignee=r.assignee,
        subject_type=subject_type,
        subject_id=subject,
        number=number,
        customer_id=r.customer_id,
        customer_name=r.customer_name or "",
        step_label=step_label,
    )
