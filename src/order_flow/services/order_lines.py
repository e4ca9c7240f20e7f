"""Priced order lines: a parsed order body turned into lines at catalog prices and VAT rates.

Lookups only; the caller writes. Every gap (unknown customer, unknown or inactive
product, no VAT rate) is a ValidationError naming the field, before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.orm import Session

from order_flow.domain.money import line_amounts, round_price
from order_flow.domain.tax import TaxRate
from order_flow.errors import NotFoundError, ValidationError
from order_flow.services.order_input import LineInput, OrderInput
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.orders import Order, OrderLine


class CatalogLike(Protocol):
    """The two catalog look-ups an order needs (services.catalog.CatalogService)."""

    def rate_for(self, session: Session, category: str, on: date) -> TaxRate: ...

    def price_for(
        self, session: Session, product_id: int, price_list: str | None, qty: Decimal, on: date
    ) -> tuple[Decimal, bool]: ...


def prepare(
    catalog: CatalogLike, s: Session, parsed: OrderInput, today: date
) -> tuple[Customer, list[OrderLine]]:
    """Look up the customer, the products, prices and rates; ValidationError on any gap."""
    errors = dict(parsed.errors)
    customer = s.get(Customer, parsed.customer_id) if parsed.customer_id else None
    if customer is None and "customer_id" not in errors:
        errors["customer_id"] = "no such customer"
    errors.update(product_errors(s, parsed.lines))
    if errors:
        raise ValidationError(errors)
    assert customer is not None
    lines = []
    for i, item in enumerate(parsed.lines):
        try:
            lines.append(_line(catalog, s, i + 1, item, parsed.pricing == "inclusive", today))
        except NotFoundError as exc:
            errors[f"lines[{i}].product_id"] = str(exc)
    if errors:
        raise ValidationError(errors)
    return customer, lines


def product_errors(s: Session, lines: Sequence[LineInput]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for i, item in enumerate(lines):
        if item.product_id is None:
            continue
        product = s.get(Product, item.product_id)
        if product is None:
            errors[f"lines[{i}].product_id"] = "no such product"
        elif not product.active:
            errors[f"lines[{i}].product_id"] = f"product {product.sku} is not active"
    return errors


def _line(
    catalog: CatalogLike, s: Session, line_no: int, item: LineInput, inclusive: bool, today: date
) -> OrderLine:
    product = s.get(Product, item.product_id)
    assert product is not None and item.qty is not None
    rate = catalog.rate_for(s, product.tax_category, today).arithmetic_rate
    price = item.unit_price
    if price is None:
        price, includes_tax = catalog.price_for(s, product.id, None, item.qty, today)
        if includes_tax and not inclusive:
            price = round_price(price / (1 + rate))
        elif inclusive and not includes_tax:
            price = round_price(price * (1 + rate))
    amounts = line_amounts(item.qty, price, rate, inclusive)
    return OrderLine(
        line_no=line_no,
        product_id=product.id,
        description=(item.description or product.name)[:200],
        qty=item.qty,
        unit_price=price,
        tax_category=product.tax_category,
        tax_rate=rate,
        net=amounts.net,
        tax=amounts.tax,
        gross=amounts.gross,
    )


def apply(order: Order, parsed: OrderInput, lines: list[OrderLine]) -> None:
    order.pricing = parsed.pricing
    order.priority = parsed.priority
    order.promised_date = parsed.promised_date
    order.customer_po = parsed.customer_po
    order.notes = parsed.notes
    order.special = parsed.special
    order.signoff_groups = list(parsed.signoff_groups)
    order.lines = lines
    order.total_net = sum((ln.net for ln in lines), Decimal("0.00"))
    order.total_tax = sum((ln.tax for ln in lines), Decimal("0.00"))
    order.total_gross = sum((ln.gross for ln in lines), Decimal("0.00"))


def as_input(order: Order, *, with_prices: bool) -> dict[str, Any]:
    return {
        "customer_id": order.customer_id,
        "pricing": order.pricing,
        "priority": order.priority,
        "promised_date": order.promised_date.isoformat() if order.promised_date else None,
        "customer_po": order.customer_po,
        "notes": order.notes,
        "special": order.special,
        "signoff_groups": list(order.signoff_groups or []),
        "lines": [
            {
                "product_id": ln.product_id,
                "qty": str(ln.qty),
                "description": ln.description,
                **({"unit_price": str(ln.unit_price)} if with_prices else {}),
            }
            for ln in order.lines
        ],
    }


def copy_line(line: OrderLine) -> OrderLine:
    return OrderLine(
        line_no=line.line_no,
        product_id=line.product_id,
        description=line.description,
        qty=line.qty,
        unit_price=line.unit_price,
        tax_category=line.tax_category,
        tax_rate=line.tax_rate,
        net=line.net,
        tax=line.tax,
        gross=line.gross,
    )
