"""Operations: throughput, cycle time, SLA breaches, hold reasons, backlog, first pass.

Read from the engine's own records: audit transitions (``at``, ``actor``, from/to
state), tasks (due, closed, outcome) and instance states. A customer or product filter
keeps the instances of the matching orders and of their invoices.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, desc, exists, func, select
from sqlalchemy.orm import Session

from order_flow.domain.enums import HoldReason
from order_flow.errors import DefinitionError
from order_flow.services.reports_base import (
    Filters,
    ReportResult,
    audit,
    cols,
    dialect,
    in_range,
    instance_scope,
    instances,
    invoices,
    merge_by_id,
    order_scope,
    orders,
    sum_cells,
    tasks,
)
from order_flow.services.reports_sql import dec, percentiles, ratio
from order_flow.store.tables import workflow_versions
from order_flow.workflow.definition import WorkflowDefinition
from order_flow.workflow.loader import parse_definition

#: Instances in these states are done (or resting) and are not backlog.
DONE_STATES = (
    "completed",
    "closed",
    "cancelled",
    "amended",
    "issued",
    "sent",
    "partly_reversed",
    "reversed",
)
#: Backlog age columns by time in the current state: (key, label, from hours, to hours).
BACKLOG_AGES = (
    ("lt_1d", "Under 1 day", 0, 24),
    ("d1_3", "1-3 days", 24, 72),
    ("d3_7", "3-7 days", 72, 168),
    ("gt_7d", "Over 7 days", 168, None),
)
#: Cycle-time segments: (key, label).
SEGMENTS = (
    ("submitted_approved", "Submitted to approved"),
    ("approved_invoiced", "Approved to invoiced"),
    ("submitted_invoiced", "Submitted to invoiced"),
)


def throughput_by_step(session: Session, f: Filters) -> ReportResult:
    """Transitions out of each state (workflow.state) in the range, by people and by system.

    The audit trail is counted by state name alone; a state name that belongs to one
    workflow only (in any deployed version) names its workflow, so only the transitions
    out of names several workflows share (e.g. ``review``) are joined to their instances.
    """
    human = audit.c.actor != "system"
    where = [audit.c.kind == "transition", *in_range(audit.c.at, f)]
    where += instance_scope(f, audit.c.instance_id)
    measures = (func.count(), func.count(case((human, 1))))
    owners = state_owners(session)
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    shared: list[str] = []
    by_name = select(audit.c.from_state, *measures).where(*where).group_by(audit.c.from_state)
    for state, n, people in session.execute(by_name):
        workflows = owners.get(state, ())
        if len(workflows) == 1:
            counts[(next(iter(workflows)), state)] = (int(n), int(people))
        elif state is not None:
            shared.append(state)
    if shared:
        joined = (
            select(instances.c.workflow, audit.c.from_state, *measures)
            .join_from(audit, instances, instances.c.id == audit.c.instance_id)
            .where(*where, audit.c.from_state.in_(shared))
            .group_by(instances.c.workflow, audit.c.from_state)
        )
        for workflow, state, n, people in session.execute(joined):
            counts[(workflow, state)] = (int(n), int(people))
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows = [(f"{w}.{st}", n, people, n - people) for (w, st), (n, people) in ordered]
    head = cols(
        ("step", "Step", "text"),
        ("transitions", "Transitions", "int"),
        ("by_people", "By people", "int"),
        ("by_system", "By the system", "int"),
    )
    totals = ("Total", *(sum_cells(rows, i) for i in (1, 2, 3)))
    return ReportResult("throughput-by-step", head, rows, totals)


#: Parsed definitions by (version id, content hash): versions never change.
_DEFINITIONS: dict[tuple[int, str], WorkflowDefinition | None] = {}


def state_owners(session: Session) -> dict[str, frozenset[str]]:
    """Every state name of every deployed workflow version -> the workflows having it.
    A version whose source does not parse contributes nothing (its states then go the
    joined way)."""
    owners: dict[str, set[str]] = {}
    versions = session.execute(
        select(
            workflow_versions.c.id,
            workflow_versions.c.name,
            workflow_versions.c.version,
            workflow_versions.c.content_hash,
            workflow_versions.c.source,
        )
    )
    for vid, name, number, digest, source in versions:
        key = (int(vid), str(digest))
        if key not in _DEFINITIONS:
            try:
                _DEFINITIONS[key] = parse_definition(source, f"{name}@v{number}")
            except DefinitionError:
                _DEFINITIONS[key] = None
        definition = _DEFINITIONS[key]
        for st in definition.states if definition is not None else ():
            owners.setdefault(st.name, set()).add(str(name))
    return {state: frozenset(names) for state, names in owners.items()}


def throughput_by_clerk(session: Session, f: Filters) -> ReportResult:
    """Per person (not the system): transitions fired and tasks completed in the range."""
    kinds = ("transition", "complete")
    stmt = (
        select(
            audit.c.actor,
            func.count(case((audit.c.kind == "transition", 1))),
            func.count(case((audit.c.kind == "complete", 1))),
            func.count(audit.c.instance_id.distinct()),
        )
        .where(audit.c.kind.in_(kinds), audit.c.actor != "system", *in_range(audit.c.at, f))
        .where(*instance_scope(f, audit.c.instance_id))
        .group_by(audit.c.actor)
        .order_by(desc(func.count()), audit.c.actor)
    )
    rows = [(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in session.execute(stmt)]
    head = cols(
        ("clerk", "Clerk", "text"),
        ("transitions", "Transitions", "int"),
        ("tasks", "Tasks completed", "int"),
        ("instances", "Instances", "int"),
    )
    totals = ("Total", sum_cells(rows, 1), sum_cells(rows, 2), None)
    return ReportResult("throughput-by-clerk", head, rows, totals)


def cycle_time(session: Session, f: Filters) -> ReportResult:
    """Hours from first submission to approval to the first issued invoice, for orders
    created in the range: count, median and p90 (percentile_cont).

    The first submission is ``orders.submitted_at`` (kept by the engine with the state
    copy); an order row written after its instance started (bulk intake) may lack it,
    and then it is looked up in the audit trail (an index probe for those orders only).
    """
    d = dialect(session, f)
    merge_by_id(session)  # the approved orders and their first issues, both by order id
    kept = (
        select(orders.c.id, orders.c.instance_id, orders.c.submitted_at, orders.c.approved_at)
        .where(orders.c.approved_at.is_not(None), *in_range(orders.c.created_at, f))
        .where(*order_scope(f, orders.c.id))
        .subquery("kept")
    )
    first_submit = (
        select(func.min(audit.c.at))
        .where(
            audit.c.instance_id == kept.c.instance_id,
            audit.c.kind == "transition",
            audit.c.to_state == "submitted",
        )
        .scalar_subquery()
    )
    submitted = case((kept.c.submitted_at.is_(None), first_submit), else_=kept.c.submitted_at)
    # First issue per order, in order id order (an index of the issued blue invoices):
    # merged with the approved orders by id. A filter narrows it to the kept orders.
    narrowed = bool(f.date_from or f.date_to or f.customer_id or f.product_id)
    invoiced = (
        select(invoices.c.order_id, func.min(invoices.c.issued_at).label("at"))
        .where(
            invoices.c.kind == "blue",
            invoices.c.issued_at.is_not(None),
            *([invoices.c.order_id.in_(select(kept.c.id))] if narrowed else []),
        )
        .group_by(invoices.c.order_id)
        .subquery("invoiced")
    )
    base = (
        select(
            submitted.label("submitted"),
            kept.c.approved_at.label("approved"),
            invoiced.c.at.label("invoiced"),
        )
        .select_from(kept.outerjoin(invoiced, invoiced.c.order_id == kept.c.id))
        .subquery("base")
    )
    found = percentiles(
        session,
        d,
        base,
        {
            "submitted_approved": d.hours_between(base.c.submitted, base.c.approved),
            "approved_invoiced": d.hours_between(base.c.approved, base.c.invoiced),
            "submitted_invoiced": d.hours_between(base.c.submitted, base.c.invoiced),
        },
    )
    rows = []
    for key, label in SEGMENTS:
        n, (p50, p90) = found.get(key, (0, [None, None]))
        rows.append((label, n, dec(p50), dec(p90)))
    head = cols(
        ("segment", "Segment", "text"),
        ("orders", "Orders", "int"),
        ("median_h", "Median (hours)", "hours"),
        ("p90_h", "90th percentile (hours)", "hours"),
    )
    return ReportResult("cycle-time", head, rows, None)


def sla_breach(session: Session, f: Filters) -> ReportResult:
    """Human tasks completed in the range that had a due time: how many were late."""
    late = tasks.c.closed_at > tasks.c.due_at
    stmt = (
        select(
            instances.c.workflow,
            tasks.c.state,
            func.count(),
            func.count(case((late, 1))),
        )
        .join_from(tasks, instances, instances.c.id == tasks.c.instance_id)
        .where(
            tasks.c.kind == "human",
            tasks.c.status == "completed",
            tasks.c.due_at.is_not(None),
            *in_range(tasks.c.closed_at, f),
        )
        .where(*instance_scope(f, tasks.c.instance_id))
        .group_by(instances.c.workflow, tasks.c.state)
        .order_by(instances.c.workflow, tasks.c.state)
    )
    rows = [
        (f"{r[0]}.{r[1]}", int(r[2]), int(r[3]), ratio(int(r[3]), int(r[2])))
        for r in session.execute(stmt)
    ]
    closed, breached = sum_cells(rows, 1) or 0, sum_cells(rows, 2) or 0
    head = cols(
        ("step", "Step", "text"),
        ("closed", "Tasks completed", "int"),
        ("breached", "Completed late", "int"),
        ("rate", "Breach rate", "pct"),
    )
    return ReportResult(
        "sla-breach", head, rows, ("Total", closed, breached, ratio(breached, closed))
    )


def hold_reasons(session: Session, f: Filters) -> ReportResult:
    """Each time an order went on hold (its hold task), by reason code, with how the
    hold ended. The code is the ``hold_reason`` the task's title was made from, kept
    in the task's data by the engine (engine.core.title_fields); a hold by rejection in
    review carries none ("other")."""
    code = tasks.c.data["hold_reason"].as_string()
    reason = case((code.in_([c.value for c in HoldReason]), code), else_="other").label("reason")
    outcome = tasks.c.outcome
    inner = (
        select(reason, tasks.c.status, outcome)
        .join_from(tasks, instances, instances.c.id == tasks.c.instance_id)
        .where(
            instances.c.workflow == "order",
            tasks.c.state == "on_hold",
            tasks.c.kind == "human",
            *in_range(tasks.c.created_at, f),
        )
        .where(*instance_scope(f, tasks.c.instance_id))
        .subquery()
    )
    stmt = (
        select(
            inner.c.reason,
            func.count(),
            func.count(case((inner.c.outcome == "recheck", 1))),
            func.count(case((inner.c.outcome == "override", 1))),
            func.count(case((inner.c.outcome == "cancel", 1))),
            func.count(case((inner.c.status == "open", 1))),
        )
        .group_by(inner.c.reason)
        .order_by(desc(func.count()), inner.c.reason)
    )
    raw: list[tuple[str, list[int]]] = [
        (str(r[0]), [int(v) for v in r[1:]]) for r in session.execute(stmt)
    ]
    total = sum(counts[0] for _reason, counts in raw)
    rows = [(reason, c[0], ratio(c[0], total), *c[1:]) for reason, c in raw]
    head = cols(
        ("reason", "Hold reason", "text"),
        ("holds", "Holds", "int"),
        ("share", "Share", "pct"),
        ("rechecked", "Fixed and re-checked", "int"),
        ("overridden", "Overridden", "int"),
        ("cancelled", "Cancelled", "int"),
        ("open", "Still open", "int"),
    )
    totals = ("Total", total, ratio(total, total), *(sum_cells(rows, i) for i in range(3, 7)))
    return ReportResult("hold-reasons", head, rows, totals)


def backlog(session: Session, f: Filters) -> ReportResult:
    """Instances not yet done, by workflow and state, aged by the time in that state
    (as of the clock); the date filter applies to when the instance started."""
    now = f.now
    columns: list[ColumnElement[Any]] = [func.count()]
    for _key, _label, low, high in BACKLOG_AGES:
        cond = [instances.c.entered_at <= now - timedelta(hours=low)]
        if high is not None:
            cond.append(instances.c.entered_at > now - timedelta(hours=high))
        columns.append(func.count(case((and_(*cond), 1))))
    stmt = (
        select(instances.c.workflow, instances.c.state, *columns)
        .where(
            instances.c.workflow.in_(("order", "invoice")),
            instances.c.state.not_in(DONE_STATES),
            *in_range(instances.c.created_at, f),
        )
        .where(*instance_scope(f, instances.c.id))
        .group_by(instances.c.workflow, instances.c.state)
        .order_by(instances.c.workflow, instances.c.state)
    )
    rows = [(f"{r[0]}.{r[1]}", *(int(v) for v in r[2:])) for r in session.execute(stmt)]
    head = cols(
        ("state", "State", "text"),
        ("count", "Waiting", "int"),
        *((key, label, "int") for key, label, _lo, _hi in BACKLOG_AGES),
    )
    totals = ("Total", *(sum_cells(rows, i) or 0 for i in range(1, 2 + len(BACKLOG_AGES))))
    return ReportResult("backlog", head, rows, totals)


def first_pass(session: Session, f: Filters) -> ReportResult:
    """Orders approved in the range (by month of approval) and how many got there with
    no human task at all: no hold, no review, no sign-off."""
    touched = exists().where(tasks.c.instance_id == orders.c.instance_id, tasks.c.kind == "human")
    d = dialect(session, f)
    period = d.period(orders.c.approved_at, "month").label("period")
    inner = (
        select(period, case((touched, 0), else_=1).label("clean"))
        .where(orders.c.approved_at.is_not(None), *in_range(orders.c.approved_at, f))
        .where(*order_scope(f, orders.c.id))
        .subquery()
    )
    stmt = (
        select(d.label(inner.c.period), func.count(), func.sum(inner.c.clean))
        .group_by(inner.c.period)
        .order_by(inner.c.period)
    )
    rows = [
        (str(r[0]), int(r[1]), int(r[2] or 0), ratio(int(r[2] or 0), int(r[1])))
        for r in session.execute(stmt)
    ]
    approved, clean = sum_cells(rows, 1) or 0, sum_cells(rows, 2) or 0
    head = cols(
        ("period", "Month approved", "text"),
        ("approved", "Approved", "int"),
        ("first_pass", "No human touch", "int"),
        ("rate", "First-pass rate", "pct"),
    )
    return ReportResult(
        "first-pass", head, rows, ("Total", approved, clean, ratio(clean, approved))
    )
