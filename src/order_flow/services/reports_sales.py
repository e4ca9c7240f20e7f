"""Sales: orders and revenue by period, customer, product and salesperson; top lists;
average order value; tax by rate.

Every figure counts orders in SALES_STATES (approved, completed, closed), dated by the
order's creation (local date). With a product filter the amounts are those of the
product's lines only, and an order counts once however many such lines it has.

The lifecycle state is read from ``orders.state`` (the engine's mirror of the order's
instance state), never by joining the instances; a partial index on the sales orders
by creation time (migration 0007) carries the columns these figures add up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, desc, func, select, true
from sqlalchemy.orm import Session

from order_flow.domain.money import round_money
from order_flow.services.reports_base import (
    SALES_STATES,
    Filters,
    ReportResult,
    cols,
    customers,
    dialect,
    in_range,
    merge_by_id,
    order_lines,
    orders,
    products,
    sum_cells,
)
from order_flow.services.reports_sql import (
    dec,
    money,
    money_sum,
    period_values,
    periods,
    utc_local_date,
)

#: How many rows the top lists show.
TOP_N = 10

_MEASURES = (
    ("orders", "Orders", "int"),
    ("net", "Net", "money"),
    ("tax", "Tax", "money"),
    ("gross", "Gross", "money"),
)


def _source(f: Filters) -> Any:
    """One row per sale (an order, or a line of the filtered product)."""
    where = _sales(f)
    joined: Any = orders
    if f.product_id is None:
        amounts = (orders.c.total_net, orders.c.total_tax, orders.c.total_gross)
    else:
        joined = joined.join(order_lines, order_lines.c.order_id == orders.c.id)
        where.append(order_lines.c.product_id == f.product_id)
        amounts = (order_lines.c.net, order_lines.c.tax, order_lines.c.gross)
    return (
        select(
            orders.c.id.label("order_id"),
            orders.c.customer_id,
            orders.c.created_by,
            orders.c.created_at,
            amounts[0].label("net"),
            amounts[1].label("tax"),
            amounts[2].label("gross"),
        )
        .select_from(joined)
        .where(*where)
        .subquery()
    )


def _sales(f: Filters) -> list[ColumnElement[bool]]:
    """Orders that are sales, created in the range, of the customer if one is given."""
    where: list[ColumnElement[bool]] = [orders.c.state.in_(SALES_STATES)]
    where += in_range(orders.c.created_at, f)
    if f.customer_id is not None:
        where.append(orders.c.customer_id == f.customer_id)
    return where


def _measures(src: Any, f: Filters) -> list[ColumnElement[Any]]:
    count = func.count(src.c.order_id.distinct()) if f.product_id else func.count()
    return [
        count.label("orders"),
        money_sum(src.c.net).label("net"),
        money_sum(src.c.tax).label("tax"),
        money_sum(src.c.gross).label("gross"),
    ]


def _finish(name: str, head: tuple[tuple[str, str, str], ...], rows: list[Any]) -> ReportResult:
    """Rows of (keys..., orders, net, tax, gross) with money as Decimal, and totals."""
    n = len(head)
    out = [(*r[:n], int(r[n]), money(r[n + 1]), money(r[n + 2]), money(r[n + 3])) for r in rows]
    totals = (
        "Total",
        *([None] * (n - 1)),
        *(sum_cells(out, n + i) if out else (0 if i == 0 else money(0)) for i in range(4)),
    )
    return ReportResult(name, cols(*head, *_MEASURES), out, totals)


def sales_by_period(session: Session, f: Filters, grain: str) -> ReportResult:
    d = dialect(session, f)
    if d.is_pg and f.customer_id is None and f.product_id is None:
        rows = _by_period_ranges(session, f, grain)
    else:  # a few rows: each one's local period, grouped
        src = _source(f)
        period = d.period(src.c.created_at, grain).label("period")
        inner = select(period, src.c.order_id, src.c.net, src.c.tax, src.c.gross).subquery()
        stmt = (
            select(d.label(inner.c.period), *_measures(inner, f))
            .group_by(inner.c.period)
            .order_by(inner.c.period)
        )
        rows = list(session.execute(stmt))
    return _finish(f"sales-by-{grain}", (("period", "Period", "text"),), rows)


def _by_period_ranges(session: Session, f: Filters, grain: str) -> list[Any]:
    """Each local period's figures summed over its UTC range of creation times: one
    index range per period (a LATERAL subquery), so no row is converted to local time
    and no hash table holds a group per period. Periods without sales are left out."""
    where = _sales(f)
    lo, hi = session.execute(
        select(func.min(orders.c.created_at), func.max(orders.c.created_at)).where(*where)
    ).one()
    if lo is None:
        return []
    first = f.date_from or utc_local_date(lo, f.tz)
    last = f.date_to or utc_local_date(hi, f.tz)
    p = period_values(periods(first, last, grain, f.tz))
    created = orders.c.created_at
    figures = (
        select(
            func.count().label("orders"),
            money_sum(orders.c.total_net).label("net"),
            money_sum(orders.c.total_tax).label("tax"),
            money_sum(orders.c.total_gross).label("gross"),
        )
        .where(*where, created >= p.c.lo, created < p.c.hi)
        .lateral("figures")
    )
    stmt = (
        select(p.c.label, figures.c.orders, figures.c.net, figures.c.tax, figures.c.gross)
        .select_from(p.join(figures, true()))
        .where(figures.c.orders > 0)
        .order_by(p.c.lo)
    )
    return list(session.execute(stmt))


def sales_by_day(session: Session, f: Filters) -> ReportResult:
    return sales_by_period(session, f, "day")


def sales_by_week(session: Session, f: Filters) -> ReportResult:
    return sales_by_period(session, f, "week")


def sales_by_month(session: Session, f: Filters) -> ReportResult:
    return sales_by_period(session, f, "month")


def _by_customer(f: Filters, limit: int | None) -> Select[Any]:
    src = _source(f)
    agg = select(src.c.customer_id, *_measures(src, f)).group_by(src.c.customer_id).subquery()
    stmt = (
        select(
            customers.c.code,
            customers.c.name,
            agg.c.orders,
            agg.c.net,
            agg.c.tax,
            agg.c.gross,
        )
        .join_from(agg, customers, customers.c.id == agg.c.customer_id)
        .order_by(desc(agg.c.gross), customers.c.code)
    )
    return stmt.limit(limit) if limit else stmt


_CUSTOMER_HEAD = (("code", "Customer code", "text"), ("customer", "Customer", "text"))
_PRODUCT_HEAD = (("sku", "SKU", "text"), ("product", "Product", "text"))


def sales_by_customer(session: Session, f: Filters) -> ReportResult:
    rows = list(session.execute(_by_customer(f, None)))
    return _finish("sales-by-customer", _CUSTOMER_HEAD, rows)


def top_customers(session: Session, f: Filters) -> ReportResult:
    rows = list(session.execute(_by_customer(f, TOP_N)))
    return _finish("top-customers", _CUSTOMER_HEAD, rows)


def _by_product(f: Filters, limit: int | None) -> Select[Any]:
    """Per product: orders with it, quantity and amounts of its lines in sales.

    The lines come in (order, product) order, as the index on order lines keeps them,
    merged with the sales orders by id; a line counts its order when the line before it
    is not of the same order and product. That is COUNT(DISTINCT order_id) without a
    sort of every line by product (the orders per product are counted in one pass)."""
    where = _sales(f)
    if f.product_id is not None:
        where.append(order_lines.c.product_id == f.product_id)
    in_order = (order_lines.c.order_id, order_lines.c.product_id)
    same = and_(
        func.lag(order_lines.c.order_id).over(order_by=in_order) == order_lines.c.order_id,
        func.lag(order_lines.c.product_id).over(order_by=in_order) == order_lines.c.product_id,
    )
    lines = (
        select(
            order_lines.c.product_id,
            case((same, 0), else_=1).label("first"),
            order_lines.c.qty,
            order_lines.c.net,
            order_lines.c.tax,
            order_lines.c.gross,
        )
        .select_from(order_lines.join(orders, orders.c.id == order_lines.c.order_id))
        .where(*where)
        .subquery("lines")
    )
    agg = (
        select(
            lines.c.product_id,
            func.sum(lines.c.first).label("orders"),
            func.round(func.sum(lines.c.qty), 8).label("qty"),
            money_sum(lines.c.net).label("net"),
            money_sum(lines.c.tax).label("tax"),
            money_sum(lines.c.gross).label("gross"),
        )
        .group_by(lines.c.product_id)
        .subquery()
    )
    stmt = (
        select(
            products.c.sku,
            products.c.name,
            agg.c.orders,
            agg.c.net,
            agg.c.tax,
            agg.c.gross,
            agg.c.qty,
        )
        .join_from(agg, products, products.c.id == agg.c.product_id)
        .order_by(desc(agg.c.gross), products.c.sku)
    )
    return stmt.limit(limit) if limit else stmt


def _product_result(name: str, rows: list[Any]) -> ReportResult:
    base = _finish(name, _PRODUCT_HEAD, [r[:6] for r in rows])
    qty = [dec(r[6], "0.00000001") or Decimal(0) for r in rows]
    out = [(*b, q.normalize()) for b, q in zip(base.rows, qty, strict=True)]
    assert base.totals is not None
    # An order with several products counts under each: the order total is not additive.
    totals = (*base.totals[:2], None, *base.totals[3:], None)
    head = (*base.columns, *cols(("qty", "Quantity", "qty")))
    return ReportResult(name, head, out, totals)


def sales_by_product(session: Session, f: Filters) -> ReportResult:
    return _product_result("sales-by-product", list(session.execute(_by_product(f, None))))


def top_products(session: Session, f: Filters) -> ReportResult:
    return _product_result("top-products", list(session.execute(_by_product(f, TOP_N))))


def sales_by_salesperson(session: Session, f: Filters) -> ReportResult:
    """The clerk who entered the order (orders.created_by)."""
    src = _source(f)
    stmt = (
        select(src.c.created_by, *_measures(src, f))
        .group_by(src.c.created_by)
        .order_by(desc("gross"), src.c.created_by)
    )
    rows = list(session.execute(stmt))
    return _finish("sales-by-salesperson", (("salesperson", "Salesperson", "text"),), rows)


def average_order_value(session: Session, f: Filters) -> ReportResult:
    """Per month: orders, gross and gross per order (half-up to the fen)."""
    monthly = sales_by_period(session, f, "month")
    head = cols(
        ("period", "Period", "text"),
        ("orders", "Orders", "int"),
        ("gross", "Gross", "money"),
        ("average", "Average order value", "money"),
    )

    def avg(gross: Decimal, n: int) -> Decimal | None:
        return round_money(gross / n) if n else None

    rows = [(r[0], r[1], r[4], avg(r[4], r[1])) for r in monthly.rows]
    t = monthly.totals
    assert t is not None
    totals = ("Total", t[1], t[4], avg(t[4], t[1]))
    return ReportResult("average-order-value", head, rows, totals)


def rate_label(rate: Any) -> str:
    """0.13 -> '13%', 0.015 -> '1.5%'."""
    pct = (dec(rate, "0.0001") or Decimal(0)) * 100
    return f"{pct.quantize(Decimal('0.01')).normalize():f}%"


def tax_by_rate(session: Session, f: Filters) -> ReportResult:
    """Order lines of sales grouped by VAT rate (0 covers the exempt markers too)."""
    merge_by_id(session)  # the lines by order and the sales orders, both by order id
    where = _sales(f)
    if f.product_id is not None:
        where.append(order_lines.c.product_id == f.product_id)
    stmt = (
        select(
            order_lines.c.tax_rate,
            func.count().label("lines"),
            money_sum(order_lines.c.net),
            money_sum(order_lines.c.tax),
            money_sum(order_lines.c.gross),
        )
        .select_from(order_lines.join(orders, orders.c.id == order_lines.c.order_id))
        .where(*where)
        .group_by(order_lines.c.tax_rate)
        .order_by(desc(order_lines.c.tax_rate))
    )
    rows = [(rate_label(r[0]), int(r[1]), *map(money, r[2:])) for r in session.execute(stmt)]
    head = cols(
        ("rate", "VAT rate", "text"),
        ("lines", "Lines", "int"),
        ("net", "Net", "money"),
        ("tax", "Tax", "money"),
        ("gross", "Gross", "money"),
    )
    totals = ("Total", *(sum_cells(rows, i) for i in range(1, 5)))
    return ReportResult("tax-by-rate", head, rows, totals)
