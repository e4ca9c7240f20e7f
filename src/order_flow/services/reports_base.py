"""What every report takes and returns: filters in, a typed table (rows + totals) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Table, select, text
from sqlalchemy.orm import Session

from order_flow.services.reports_sql import Dialect, utc_bounds
from order_flow.store import orders as store_orders
from order_flow.store.catalog import Product, Reservation
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice, InvoiceLine, Payment
from order_flow.store.models import AuditEvent, Instance, Task
from order_flow.store.orders import Order, OrderLine

orders = cast(Table, Order.__table__)
order_lines = cast(Table, OrderLine.__table__)
invoices = cast(Table, Invoice.__table__)
invoice_lines = cast(Table, InvoiceLine.__table__)
payments = cast(Table, Payment.__table__)
customers = cast(Table, Customer.__table__)
products = cast(Table, Product.__table__)
reservations = cast(Table, Reservation.__table__)
instances = cast(Table, Instance.__table__)
audit = cast(Table, AuditEvent.__table__)
tasks = cast(Table, Task.__table__)

#: Orders that count as sales: confirmed and not undone (cancelled / amended drop out).
#: Defined with the table, whose partial indexes for the sales reports use it.
SALES_STATES = store_orders.SALES_STATES

#: Column kinds: how a value is formatted (CSV and JSON keep full precision).
KINDS = ("text", "int", "money", "qty", "pct", "hours", "ratio")


@dataclass(frozen=True)
class Filters:
    """Inclusive local dates; ``tz`` is the business time zone; ``now`` is the clock
    (the as-of instant of ageing and backlog). Which date a report filters on is said
    in its docstring."""

    date_from: date | None = None
    date_to: date | None = None
    customer_id: int | None = None
    product_id: int | None = None
    tz: str = "Asia/Shanghai"
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def bounds(self) -> tuple[datetime | None, datetime | None]:
        return utc_bounds(self.date_from, self.date_to, self.tz)

    @property
    def as_of(self) -> date:
        """The day ageing is measured on: the end of the range, else today (local)."""
        return self.date_to or self.now.astimezone(ZoneInfo(self.tz)).date()


@dataclass(frozen=True)
class Column:
    key: str
    #: English; the UI translates it, the CLI prints it as is.
    label: str
    kind: str = "text"


@dataclass(frozen=True)
class ReportResult:
    """Rows in column order; ``totals`` is one row of the same shape (None cells blank)."""

    name: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    totals: tuple[Any, ...] | None = None

    def column(self, key: str) -> list[Any]:
        i = [c.key for c in self.columns].index(key)
        return [r[i] for r in self.rows]

    def row(self, first: Any) -> dict[str, Any]:
        """The row whose first cell is ``first``, by column key (tests and callers)."""
        for r in self.rows:
            if r[0] == first:
                return dict(zip((c.key for c in self.columns), r, strict=True))
        raise KeyError(first)

    def total(self) -> dict[str, Any]:
        if self.totals is None:
            return {}
        return dict(zip((c.key for c in self.columns), self.totals, strict=True))


def cols(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(k, label, kind) for k, label, kind in spec)


def dialect(session: Session, f: Filters) -> Dialect:
    return Dialect.of(session, f.tz)


def merge_by_id(session: Session) -> None:
    """For a report that joins two relations both read in id order from their indexes
    (PostgreSQL): rule out the hash join, which the planner prefers by its estimates
    but which builds a table of every row first; merging them took half the time over
    a million orders (bench/reports). For the rest of the report's transaction only."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_hashjoin = off"))


def in_range(col: ColumnElement[Any], f: Filters) -> list[ColumnElement[bool]]:
    """Conditions putting a UTC timestamp column inside the filter's dates."""
    start, end = f.bounds
    out: list[ColumnElement[bool]] = []
    if start is not None:
        out.append(col >= start)
    if end is not None:
        out.append(col < end)
    return out


def dates_in_range(col: ColumnElement[Any], f: Filters) -> list[ColumnElement[bool]]:
    """Conditions for a DATE column (due dates, payment dates)."""
    out: list[ColumnElement[bool]] = []
    if f.date_from is not None:
        out.append(col >= f.date_from)
    if f.date_to is not None:
        out.append(col <= f.date_to)
    return out


def _order_ids(f: Filters) -> Select[Any]:
    """Ids of the orders the customer / product filters keep (uncorrelated subquery)."""
    stmt = select(orders.c.id).correlate(None)
    if f.customer_id is not None:
        stmt = stmt.where(orders.c.customer_id == f.customer_id)
    if f.product_id is not None:
        stmt = stmt.where(
            orders.c.id.in_(
                select(order_lines.c.order_id)
                .where(order_lines.c.product_id == f.product_id)
                .correlate(None)
            )
        )
    return stmt


def order_scope(f: Filters, order_id: ColumnElement[Any]) -> list[ColumnElement[bool]]:
    """Customer and product filters on anything keyed by an order id."""
    if f.customer_id is None and f.product_id is None:
        return []
    return [order_id.in_(_order_ids(f))]


def instance_scope(f: Filters, instance_id: ColumnElement[Any]) -> list[ColumnElement[bool]]:
    """Customer and product filters on workflow instances: an order's own instance, or
    the instance of one of its invoices."""
    if f.customer_id is None and f.product_id is None:
        return []
    kept = _order_ids(f).subquery()
    by_order = select(orders.c.instance_id).where(
        orders.c.id.in_(select(kept.c.id)), orders.c.instance_id.is_not(None)
    )
    by_invoice = select(invoices.c.instance_id).where(
        invoices.c.order_id.in_(select(kept.c.id)), invoices.c.instance_id.is_not(None)
    )
    return [instance_id.in_(by_order.union_all(by_invoice).subquery().select().correlate(None))]


def sum_cells(rows: Sequence[tuple[Any, ...]], index: int) -> Any:
    """The total of one column of already aggregated rows."""
    values = [r[index] for r in rows if r[index] is not None]
    return sum(values[1:], values[0]) if values else None
