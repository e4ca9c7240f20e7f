"""From file rows to order bodies: grouping, customer and SKU look-ups, and back from
the order service's field errors (``lines[2].qty``) to a row and a column.

Rows next to each other with the same customer and customer PO are one order's
lines. Only what a file says differently from the JSON body is handled here
(codes instead of ids, 是/否, 紧急, dates like 2026/3/31); every rule of the order
itself is the order service's (order_input.parse_order, order_lines.prepare).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from order_flow.services.import_files import OrderFile, Row, iso_date
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer

PRIORITY_WORDS = {
    "紧急": "urgent", "加急": "urgent", "急": "urgent", "高": "high", "优先": "high",
    "普通": "normal", "一般": "normal", "正常": "normal", "低": "low",
}  # fmt: skip
PRICING_WORDS = {"含税": "inclusive", "不含税": "exclusive"}
YES = {"1", "y", "yes", "true", "是", "急", "紧急", "加急", "√", "✓", "x"}
NO = {"0", "n", "no", "false", "否", "不", "不急"}
#: Service field of a line -> the file's field.
LINE_FIELDS = {
    "product_id": "sku",
    "qty": "quantity",
    "unit_price": "unit_price",
    "description": "description",
}
#: Service field of the order -> the file's field.
ORDER_FIELDS = {
    "customer_id": "customer",
    "customer_po": "customer_po",
    "priority": "priority",
    "promised_date": "promised_date",
    "notes": "note",
    "pricing": "pricing",
    "lines": "sku",
}
#: Look-up caches stop growing here (a file names few customers and SKUs; this bounds
#: memory for one that names many).
_CACHE_MAX = 50_000


@dataclass
class Group:
    """One order's rows, and what the file layer found wrong before the service looks."""

    rows: list[Row]
    key: tuple[int, str] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: Order field -> the index of the row that gave its value.
    source: dict[str, int] = field(default_factory=dict)


def group_rows(rows: Iterable[Row]) -> Iterator[Group]:
    """Adjacent rows with the same customer and PO; a row missing either stands alone."""
    current: list[Row] = []
    mark: tuple[str, str] | None = None
    for row in rows:
        key = (row.fields.get("customer", ""), row.fields.get("customer_po", ""))
        if current and (key != mark or not all(key)):
            yield Group(current)
            current = []
        current.append(row)
        mark = key
    if current:
        yield Group(current)


def key_digest(key: tuple[int, str]) -> int:
    """8 bytes standing for a (customer, PO) key, for the seen-before check."""
    raw = f"{key[0]}\x00{key[1]}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


class Resolver:
    """Customer codes or names and SKUs to ids, cached across chunks."""

    def __init__(self) -> None:
        self.customers: dict[str, int | str] = {}  # id, or the error message
        self.products: dict[str, int] = {}

    def load(self, s: Session, groups: list[Group]) -> None:
        names = {g.rows[0].fields.get("customer", "") for g in groups} - {""}
        names -= self.customers.keys()
        skus = {r.fields.get("sku", "") for g in groups for r in g.rows} - {""}
        skus -= self.products.keys()
        if len(self.customers) > _CACHE_MAX:
            self.customers.clear()
        if len(self.products) > _CACHE_MAX:
            self.products.clear()
        if names:
            found = s.execute(
                select(Customer.id, Customer.code, Customer.name).where(
                    or_(Customer.code.in_(names), Customer.name.in_(names))
                )
            ).all()
            for name in names:
                by_code = [c.id for c in found if c.code == name]
                by_name = [c.id for c in found if c.name == name]
                if by_code or len(by_name) == 1:
                    self.customers[name] = (by_code or by_name)[0]
                elif by_name:
                    self.customers[name] = "several customers have this name; use the code"
                else:
                    self.customers[name] = "no customer with this code or name"
        if skus:
            stmt = select(Product.sku, Product.id).where(Product.sku.in_(skus))
            self.products.update({sku: pid for sku, pid in s.execute(stmt).all()})

    def body(self, group: Group) -> None:
        """Fill ``group.data`` (the order body), ``key``, ``errors`` and ``source``."""
        rows, first = group.rows, group.rows[0].fields
        name, po = first.get("customer", ""), first.get("customer_po", "")
        customer = self.customers.get(name) if name else "required"
        if isinstance(customer, str) or customer is None:
            group.errors["customer_id"] = customer or "no customer with this code or name"
        if not po:
            group.errors["customer_po"] = (
                "required for an import: it groups the lines and makes a re-import safe"
            )
        elif isinstance(customer, int):
            group.key = (customer, po)
        data: dict[str, Any] = {"customer_id": customer if isinstance(customer, int) else None}
        data["customer_po"] = po
        priority = _order_value(group, "priority")
        data["priority"] = PRIORITY_WORDS.get(priority, priority.lower()) or None
        urgent = _order_value(group, "urgent").lower()
        if urgent in YES:
            data["priority"] = "urgent"
            group.source["priority"] = group.source["urgent"]
        elif urgent not in NO and urgent:
            group.errors[f"rows[{group.source['urgent']}].urgent"] = "must be yes or no (是/否)"
        promised = _order_value(group, "promised_date")
        data["promised_date"] = iso_date(promised) or None
        pricing = _order_value(group, "pricing")
        data["pricing"] = PRICING_WORDS.get(pricing, pricing.lower()) or None
        notes = dict.fromkeys(r.fields.get("note", "") for r in rows)
        data["notes"] = "; ".join(n for n in notes if n)
        lines = []
        for i, row in enumerate(rows):
            sku = row.fields.get("sku", "")
            product = self.products.get(sku)
            if not sku:
                group.errors[f"lines[{i}].product_id"] = "required"
            elif product is None:
                group.errors[f"lines[{i}].product_id"] = "no product with this SKU"
            lines.append(
                {
                    "product_id": product,
                    "qty": row.fields.get("quantity", ""),
                    "unit_price": row.fields.get("unit_price") or None,
                    "description": row.fields.get("description") or None,
                }
            )
        data["lines"] = lines
        group.data = data


def _order_value(group: Group, name: str) -> str:
    """The group's one value of an order-level column; a row saying otherwise is an error."""
    value, at = "", 0
    for i, row in enumerate(group.rows):
        v = row.fields.get(name, "")
        if not v:
            continue
        if not value:
            value, at = v, i
        elif v != value:
            first = group.rows[at].number
            group.errors[f"rows[{i}].{name}"] = f"differs from row {first} of the same order"
    group.source[name] = at
    return value


def locate(group: Group, key: str, f: OrderFile) -> tuple[Row, str]:
    """The row and the column header a field error of this group belongs to."""
    rows = group.rows
    if key.startswith(("lines[", "rows[")):
        index, _, name = key.partition("].")
        i = int(index.split("[", 1)[1])
        row = rows[i] if i < len(rows) else rows[0]
        return row, f.column_name(LINE_FIELDS.get(name, name))
    column = ORDER_FIELDS.get(key, key)
    return rows[group.source.get(column, 0)], f.column_name(column)
