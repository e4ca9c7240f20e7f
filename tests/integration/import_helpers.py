"""Builders for the import tests: a small catalog, order files, and counts of what was written."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.store.customers import Customer
from order_flow.store.imports import ImportKey
from order_flow.store.orders import Order, OrderLine
from order_flow.store.tables import audit, instances, outbox
from tests.integration.order_helpers import customer, people, product

ZH = ("客户", "客户订单号", "商品编码", "数量", "单价", "紧急", "交货日期", "备注")
EN = ("customer", "customer_po", "sku", "quantity", "unit_price", "urgent", "promised_date", "note")


@dataclass(frozen=True)
class Shop:
    clerk: Actor
    customers: list[Customer]
    skus: list[str]
    product_ids: list[int]


def shop(app: App) -> Shop:
    """Two customers, three products (list prices 100, 50 and 12.5, VAT 13 %)."""
    p = people(app)
    buyers = [customer(app, p.alice), customer(app, p.alice)]
    goods = [product(app, p.alice, price=price) for price in ("100", "50", "12.5")]
    return Shop(p.alice, buyers, [g.sku for g in goods], [g.id for g in goods])


def write_csv(
    path: Path, header: tuple[str, ...], rows: list[tuple[Any, ...]], encoding: str = "utf-8-sig"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def good_rows(s: Shop, orders: int, lines: int = 2, prefix: str = "PO") -> list[tuple[Any, ...]]:
    """``orders`` orders of ``lines`` lines each: qty i+1 of the products in turn."""
    rows = []
    for n in range(orders):
        code = s.customers[n % 2].code
        for i in range(lines):
            rows.append((code, f"{prefix}-{n:04d}", s.skus[i % 3], str(i + 1), "", "", "", ""))
    return rows


def written(app: App) -> dict[str, int]:
    """How many rows each table an import writes to holds."""
    with app.engine.session_factory() as s:

        def n(table: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

        return {
            "orders": n(Order),
            "lines": n(OrderLine),
            "instances": n(instances.select().where(instances.c.workflow == "order").subquery()),
            "audit": n(audit),
            "jobs": n(outbox),
            "keys": n(ImportKey),
        }


def orders_by_po(app: App) -> dict[str, list[Order]]:
    with app.engine.session_factory() as s:
        out: dict[str, list[Order]] = {}
        for order in s.scalars(select(Order).order_by(Order.id)):
            out.setdefault(order.customer_po or "", []).append(order)
        return out
