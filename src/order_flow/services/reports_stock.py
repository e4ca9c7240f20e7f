"""Demand and stock: products often short, the backorder, stock turnover.

A line is short while it still needs stock: qty − delivered − reserved > 0, on an order
that is approved (partial policy: the rest is backordered) or on hold for STOCK_SHORT
(complete policy: waiting for everything). Turnover has no stock ledger to average, so
it divides what left the warehouse in the range (consumed reservations) by today's
on-hand quantity; an approximation, said so on the page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, desc, func, or_, select
from sqlalchemy.orm import Session

from order_flow.services.reports_base import (
    Filters,
    ReportResult,
    cols,
    customers,
    in_range,
    order_lines,
    orders,
    products,
    reservations,
    sum_cells,
)
from order_flow.services.reports_sql import dec, money, money_sum

_Q = "0.00000001"


def _qty(value: Any) -> Decimal:
    return (dec(value, _Q) or Decimal(0)).normalize()


def _short_lines(f: Filters) -> Any:
    need = func.round(
        order_lines.c.qty - order_lines.c.qty_delivered - order_lines.c.qty_reserved, 8
    )
    waiting = or_(
        orders.c.state == "approved",
        and_(orders.c.state == "on_hold", orders.c.hold_reason == "STOCK_SHORT"),
    )
    where: list[ColumnElement[bool]] = [waiting, need > 0, *in_range(orders.c.created_at, f)]
    if f.customer_id is not None:
        where.append(orders.c.customer_id == f.customer_id)
    if f.product_id is not None:
        where.append(order_lines.c.product_id == f.product_id)
    # The value still to ship: the line's net in proportion, to the fen.
    value = func.round(order_lines.c.net * need / order_lines.c.qty, 2)
    return (
        select(
            order_lines.c.product_id,
            orders.c.id.label("order_id"),
            orders.c.customer_id,
            need.label("need"),
            value.label("value"),
        )
        .select_from(order_lines.join(orders, orders.c.id == order_lines.c.order_id))
        .where(*where)
        .subquery()
    )


def short_products(session: Session, f: Filters) -> ReportResult:
    """Products by how many open order lines wait for stock (orders created in range)."""
    src = _short_lines(f)
    agg = (
        select(
            src.c.product_id,
            func.count().label("lines"),
            func.count(src.c.order_id.distinct()).label("orders"),
            func.round(func.sum(src.c.need), 8).label("short"),
        )
        .group_by(src.c.product_id)
        .subquery()
    )
    stmt = (
        select(
            products.c.sku,
            products.c.name,
            agg.c.lines,
            agg.c.orders,
            agg.c.short,
            func.round(products.c.on_hand - products.c.reserved, 8),
        )
        .join_from(agg, products, products.c.id == agg.c.product_id)
        .order_by(desc(agg.c.lines), desc(agg.c.short), products.c.sku)
    )
    rows = [
        (r[0], r[1], int(r[2]), int(r[3]), _qty(r[4]), _qty(r[5])) for r in session.execute(stmt)
    ]
    head = cols(
        ("sku", "SKU", "text"),
        ("product", "Product", "text"),
        ("lines", "Short lines", "int"),
        ("orders", "Orders waiting", "int"),
        ("short_qty", "Quantity short", "qty"),
        ("available", "Available now", "qty"),
    )
    return ReportResult(
        "short-products", head, rows, ("Total", None, sum_cells(rows, 2), None, None, None)
    )


def backorder_value(session: Session, f: Filters) -> ReportResult:
    """Net value still to ship on short lines, per customer."""
    src = _short_lines(f)
    agg = (
        select(
            src.c.customer_id,
            func.count(src.c.order_id.distinct()).label("orders"),
            func.count().label("lines"),
            money_sum(src.c.value).label("value"),
        )
        .group_by(src.c.customer_id)
        .subquery()
    )
    stmt = (
        select(customers.c.code, customers.c.name, agg.c.orders, agg.c.lines, agg.c.value)
        .join_from(agg, customers, customers.c.id == agg.c.customer_id)
        .order_by(desc(agg.c.value), customers.c.code)
    )
    rows = [(r[0], r[1], int(r[2]), int(r[3]), money(r[4])) for r in session.execute(stmt)]
    head = cols(
        ("code", "Customer code", "text"),
        ("customer", "Customer", "text"),
        ("orders", "Orders", "int"),
        ("lines", "Lines", "int"),
        ("value", "Backorder value (net)", "money"),
    )
    totals = ("Total", None, *(sum_cells(rows, i) for i in (2, 3)), sum_cells(rows, 4) or money(0))
    return ReportResult("backorder-value", head, rows, totals)


def stock_turnover(session: Session, f: Filters) -> ReportResult:
    """Per product: quantity delivered in the range (consumed reservations), on hand
    now, turnover = delivered / on hand, and days of cover at the range's pace."""
    where: list[ColumnElement[bool]] = [reservations.c.status == "consumed"]
    where += in_range(reservations.c.closed_at, f)
    if f.product_id is not None:
        where.append(reservations.c.product_id == f.product_id)
    if f.customer_id is not None:
        where.append(
            reservations.c.order_line_id.in_(
                select(order_lines.c.id)
                .join(orders, orders.c.id == order_lines.c.order_id)
                .where(orders.c.customer_id == f.customer_id)
            )
        )
    agg = (
        select(
            reservations.c.product_id,
            func.round(func.sum(reservations.c.qty), 8).label("out"),
        )
        .where(*where)
        .group_by(reservations.c.product_id)
        .subquery()
    )
    stmt = (
        select(products.c.sku, products.c.name, agg.c.out, products.c.on_hand)
        .join_from(agg, products, products.c.id == agg.c.product_id)
        .order_by(desc(agg.c.out), products.c.sku)
    )
    start, end = f.bounds
    days = Decimal((end - start).days) if start and end else None
    rows = []
    for sku, name, out_raw, on_hand_raw in session.execute(stmt):
        out, on_hand = _qty(out_raw), _qty(on_hand_raw)
        turnover = dec(out / on_hand) if on_hand else None
        cover = dec(on_hand * days / out, "0.1") if days and out else None
        rows.append((sku, name, out, on_hand, turnover, cover))
    head = cols(
        ("sku", "SKU", "text"),
        ("product", "Product", "text"),
        ("delivered", "Delivered", "qty"),
        ("on_hand", "On hand now", "qty"),
        ("turnover", "Turnover", "ratio"),
        ("cover_days", "Days of cover", "ratio"),
    )
    return ReportResult("stock-turnover", head, rows, None)
