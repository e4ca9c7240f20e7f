"""Invoices: the three buckets, receivables ageing, overdue by customer, red letters by reason.

Outstanding = gross − payments (paid on or before the as-of day) − reversals (the red
invoices of the blue one). The as-of day is the filter's ``to`` date, else today.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, case, desc, func, or_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import util as sql_util

from order_flow.domain.enums import PaymentStatus
from order_flow.services.invoicing import ISSUED_STATES, PENDING_STATES, RED_STUCK_DAYS
from order_flow.services.reports_base import (
    Filters,
    ReportResult,
    cols,
    customers,
    dialect,
    in_range,
    instances,
    invoices,
    order_scope,
    orders,
    payments,
    sum_cells,
)
from order_flow.services.reports_sql import Dialect, money, money_sum

#: Ageing buckets by days past due: (key, label, lowest day, highest day or None).
AGEING = (
    ("current", "Current", None, 0),
    ("d1_30", "1-30 days", 1, 30),
    ("d31_60", "31-60 days", 31, 60),
    ("d61_90", "61-90 days", 61, 90),
    ("d90_plus", "Over 90 days", 91, None),
)


def invoice_buckets(session: Session, f: Filters) -> ReportResult:
    """Blue invoices created in the range, per clerk bucket (DOMAIN.md): an overdue
    invoice counts in 'issued' and in 'problem', so the buckets do not add up."""
    state = invoices.c.state  # the engine's mirror of the invoice's instance state
    stuck = f.now - timedelta(days=RED_STUCK_DAYS)
    # Since when a red letter is waiting: looked up for those invoices only (a CASE
    # branch runs its subquery just for the rows that take it).
    waiting_since = case(
        (
            state == "red_requested",
            select(instances.c.entered_at)
            .where(instances.c.id == invoices.c.instance_id)
            .scalar_subquery(),
        )
    )
    conditions = {
        "pending": state.in_(PENDING_STATES),
        "issued": state.in_(ISSUED_STATES),
        "problem": or_(
            state == "problem",
            invoices.c.payment_status == PaymentStatus.OVERDUE.value,
            waiting_since < stuck,
        ),
    }
    columns: list[ColumnElement[Any]] = []
    for cond in conditions.values():
        columns.append(func.count(case((cond, 1))))
        columns.append(money_sum(case((cond, invoices.c.total_gross))))
    where = [invoices.c.kind == "blue", invoices.c.state.is_not(None)]
    where += in_range(invoices.c.created_at, f)
    where += order_scope(f, invoices.c.order_id)
    row = session.execute(select(*columns).where(*where)).one()
    labels = {"pending": "Pending", "issued": "Issued", "problem": "Problem"}
    rows = [
        (labels[name], int(row[2 * i] or 0), money(row[2 * i + 1]))
        for i, name in enumerate(conditions)
    ]
    head = cols(
        ("bucket", "Bucket", "text"), ("count", "Invoices", "int"), ("amount", "Gross", "money")
    )
    return ReportResult("invoice-buckets", head, rows, None)


def _open_items(session: Session, f: Filters) -> Any:
    """Issued blue invoices with money still owed on the as-of day:
    gross + red letters - payments on or before that day, when above zero.

    Only invoices that may owe anything are read: those not settled (``payment_status``
    is not paid), and settled ones with a payment dated after the as-of day. A settled
    invoice's payments and red letters cover its gross (InvoiceService records the
    status with each payment, the daily refresh after red letters; neither is ever
    removed), so these reports read the open invoices through their partial index
    (migration 0007) and take as long as what is owed, not as the whole history.
    """
    as_of = f.as_of
    settled = invoices.c.payment_status == PaymentStatus.PAID.value
    paid_later = invoices.c.id.in_(select(payments.c.invoice_id).where(payments.c.paid_on > as_of))
    d = dialect(session, f)
    items = union_all(_owed(f, d, ~settled), _owed(f, d, and_(settled, paid_later))).subquery(
        "items"
    )
    return select(items).where(items.c.outstanding > 0).subquery()


def _owed(f: Filters, d: Dialect, which: ColumnElement[bool]) -> Select[Any]:
    """Outstanding amount and days past due of the issued blue invoices ``which`` keeps;
    payments are summed for those invoices only (joined on the same conditions)."""
    where = [invoices.c.kind == "blue", invoices.c.number.is_not(None), which]
    where += in_range(invoices.c.issued_at, f)
    where += order_scope(f, invoices.c.order_id)
    kept = invoices.alias("kept")
    paid = (
        select(payments.c.invoice_id, func.sum(payments.c.amount).label("amount"))
        .join_from(payments, kept, kept.c.id == payments.c.invoice_id)
        .where(payments.c.paid_on <= f.as_of, *(_on(kept, c) for c in where))
        .group_by(payments.c.invoice_id)
        .subquery("paid")
    )
    red = invoices.alias("red")
    reversed_ = (
        select(red.c.original_id, func.sum(red.c.total_gross).label("amount"))
        .where(red.c.kind == "red")
        .group_by(red.c.original_id)
        .subquery("reversed")
    )
    owed = invoices.c.total_gross + func.coalesce(reversed_.c.amount, 0)
    return (
        select(
            invoices.c.id,
            invoices.c.order_id,
            invoices.c.due_date,
            func.round(owed - func.coalesce(paid.c.amount, 0), 2).label("outstanding"),
            func.coalesce(d.days_since(f.as_of, invoices.c.due_date), 0).label("days"),
        )
        .select_from(
            invoices.outerjoin(paid, paid.c.invoice_id == invoices.c.id).outerjoin(
                reversed_, reversed_.c.original_id == invoices.c.id
            )
        )
        .where(*where)
    )


def _on(alias: Any, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A condition on ``invoices`` rewritten for an alias of it."""
    return cast(ColumnElement[bool], sql_util.ClauseAdapter(alias).traverse(condition))


def receivables_ageing(session: Session, f: Filters) -> ReportResult:
    """Outstanding amounts by days past due on the as-of day (no due date: current)."""
    items = _open_items(session, f)
    columns: list[ColumnElement[Any]] = []
    for _key, _label, low, high in AGEING:
        cond = []
        if low is not None:
            cond.append(items.c.days >= low)
        if high is not None:
            cond.append(items.c.days <= high)
        hit = and_(*cond)
        columns.append(func.count(case((hit, 1))))
        columns.append(money_sum(case((hit, items.c.outstanding))))
    row = session.execute(select(*columns)).one()
    rows = [
        (label, int(row[2 * i] or 0), money(row[2 * i + 1]))
        for i, (_k, label, _lo, _hi) in enumerate(AGEING)
    ]
    head = cols(
        ("bucket", "Days past due", "text"),
        ("count", "Invoices", "int"),
        ("outstanding", "Outstanding", "money"),
    )
    totals = ("Total", sum_cells(rows, 1), sum_cells(rows, 2))
    return ReportResult("receivables-ageing", head, rows, totals)


def overdue_by_customer(session: Session, f: Filters) -> ReportResult:
    """Invoices past their due date with money owed, per customer, largest first."""
    items = _open_items(session, f)
    agg = (
        select(
            orders.c.customer_id,
            func.count().label("n"),
            money_sum(items.c.outstanding).label("outstanding"),
            func.max(items.c.days).label("days"),
        )
        .join_from(items, orders, orders.c.id == items.c.order_id)
        .where(items.c.days > 0)
        .group_by(orders.c.customer_id)
        .subquery()
    )
    stmt = (
        select(customers.c.code, customers.c.name, agg.c.n, agg.c.outstanding, agg.c.days)
        .join_from(agg, customers, customers.c.id == agg.c.customer_id)
        .order_by(desc(agg.c.outstanding), customers.c.code)
    )
    rows = [(r[0], r[1], int(r[2]), money(r[3]), int(r[4])) for r in session.execute(stmt)]
    head = cols(
        ("code", "Customer code", "text"),
        ("customer", "Customer", "text"),
        ("count", "Overdue invoices", "int"),
        ("outstanding", "Outstanding", "money"),
        ("max_days", "Most days overdue", "int"),
    )
    totals = ("Total", None, sum_cells(rows, 2) or 0, sum_cells(rows, 3) or money(0), None)
    return ReportResult("overdue-by-customer", head, rows, totals)


def red_by_reason(session: Session, f: Filters) -> ReportResult:
    """Red-letter invoices issued in the range, per reason; amounts are negative."""
    where = [invoices.c.kind == "red", *in_range(invoices.c.issued_at, f)]
    where += order_scope(f, invoices.c.order_id)
    stmt = (
        select(
            func.coalesce(invoices.c.red_reason, ""),
            func.count(),
            money_sum(invoices.c.total_net),
            money_sum(invoices.c.total_gross),
        )
        .where(*where)
        .group_by(invoices.c.red_reason)
        .order_by(desc(func.count()), invoices.c.red_reason)
    )
    rows = [(str(r[0]), int(r[1]), money(r[2]), money(r[3])) for r in session.execute(stmt)]
    head = cols(
        ("reason", "Reason", "text"),
        ("count", "Red invoices", "int"),
        ("net", "Net", "money"),
        ("gross", "Gross", "money"),
    )
    totals = ("Total", *(sum_cells(rows, i) for i in range(1, 4)))
    return ReportResult("red-by-reason", head, rows, totals)
