"""Products, prices and the VAT rate table; stock comes from services/stock.py."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from order_flow.domain.enums import TaxKind
from order_flow.domain.tax import RateTable, TaxRate, default_rate_table, validate_tax_class_code
from order_flow.domain.text import gbk_len
from order_flow.engine.actors import Actor
from order_flow.engine.registry import Guard, Step
from order_flow.errors import NotFoundError, ValidationError
from order_flow.services.stock import MAX_STOCK, StockLedger, parse_quantity
from order_flow.store.catalog import PriceListItem, Product, TaxRateRow

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Guards this module provides, by the name the workflow files use.
GUARDS: dict[str, Guard] = {}
#: Step bodies this module provides, by the name the workflow files use.
STEPS: dict[str, Step] = {}

_ZERO = Decimal("0")


def _text(
    errors: dict[str, str], data: Mapping[str, Any], name: str, default: str, max_len: int
) -> str:
    value = data.get(name, default)
    value = default if value is None else value
    if not isinstance(value, str):
        errors[name] = "must be text"
        return default
    value = value.strip()
    if len(value) > max_len:
        errors[name] = f"at most {max_len} characters"
    return value


class CatalogService(StockLedger):
    def __init__(self, app: App) -> None:
        self.app = app
        self._rates: RateTable | None = None
        self._rates_lock = threading.Lock()

    # -- VAT rates -----------------------------------------------------------------

    def seed_tax_rates(self) -> int:
        """Insert the default rate table if tax_rates is empty; return the rows added."""
        with self.app.engine.uow() as uow:
            s = uow.session
            if s.scalar(select(func.count()).select_from(TaxRateRow)):
                return 0
            rows = [
                TaxRateRow(
                    category=r.code,
                    rate=r.rate,
                    kind=r.kind.value,
                    effective_from=r.effective_from,
                    effective_to=r.effective_to,
                )
                for r in default_rate_table()
            ]
            s.add_all(rows)
            uow.commit()
        self.invalidate_rates()
        return len(rows)

    def invalidate_rates(self) -> None:
        with self._rates_lock:
            self._rates = None

    def rate_table(self, session: Session) -> RateTable:
        """The table from tax_rates (cached per process); empty means the default table."""
        with self._rates_lock:
            if self._rates is None:
                rows = session.scalars(select(TaxRateRow).order_by(TaxRateRow.id)).all()
                self._rates = (
                    RateTable(
                        TaxRate(
                            r.category, r.rate, TaxKind(r.kind), r.effective_from, r.effective_to
                        )
                        for r in rows
                    )
                    if rows
                    else default_rate_table()
                )
            return self._rates

    def rate_for(self, session: Session, category: str, on: date) -> TaxRate:
        return self.rate_table(session).rate_for(category, on)

    # -- products ------------------------------------------------------------------

    def _clean_product(
        self, s: Session, data: Mapping[str, Any], own_id: int | None
    ) -> dict[str, Any]:
        errors: dict[str, str] = {}
        out: dict[str, Any] = {
            "sku": _text(errors, data, "sku", "", 64),
            "name": _text(errors, data, "name", "", 100),
            "unit": _text(errors, data, "unit", "个", 16),
        }
        for name in ("sku", "name", "unit"):
            if not out[name]:
                errors.setdefault(name, "required")
        try:
            gbk_len(out["name"])  # the invoice prints it in GBK
        except ValueError as exc:
            errors.setdefault("name", str(exc))
        code = _text(errors, data, "tax_code", "", 40)
        if code and "tax_code" not in errors:
            try:
                code = validate_tax_class_code(code)
            except ValueError as exc:
                errors["tax_code"] = str(exc)
        out["tax_code"] = code
        category = data.get("tax_category", "general_13")
        if category not in self.rate_table(s).codes():
            errors["tax_category"] = f"unknown VAT category {category!r}"
        out["tax_category"] = category
        out["price"] = parse_quantity(
            errors,
            "price",
            data.get("price", "0"),
            positive=False,
            limit=self.app.settings.max_unit_price,
        )
        for flag, default in (("price_includes_tax", False), ("active", True)):
            out[flag] = data.get(flag, default)
            if not isinstance(out[flag], bool):
                errors[flag] = "must be true or false"
        if out["sku"] and "sku" not in errors:
            other = s.scalar(select(Product).where(Product.sku == out["sku"]))
            if other is not None and other.id != own_id:
                errors["sku"] = f"SKU {out['sku']} is taken by {other.name}"
        if errors:
            raise ValidationError(errors)
        return out

    def create_product(self, data: Mapping[str, Any], actor: Actor) -> Product:
        with self.app.engine.uow() as uow:
            s = uow.session
            errors: dict[str, str] = {}
            on_hand = parse_quantity(
                errors,
                "on_hand",
                data.get("on_hand", "0"),
                positive=False,
                limit=MAX_STOCK,
            )
            try:
                clean = self._clean_product(s, data, None)
            except ValidationError as exc:
                raise ValidationError({**exc.errors, **errors}) from None
            if errors:
                raise ValidationError(errors)
            product = Product(**clean, on_hand=on_hand, reserved=_ZERO)
            s.add(product)
            self._flush_unique_sku(s, clean["sku"])
            uow.commit()
        return product

    def update_product(self, product_id: int, data: Mapping[str, Any], actor: Actor) -> Product:
        """Change master data; stock moves only through receive/reserve/consume."""
        if "on_hand" in data or "reserved" in data:
            field = "on_hand" if "on_hand" in data else "reserved"
            raise ValidationError({field: "stock changes through receiving and reservations"})
        with self.app.engine.uow() as uow:
            s = uow.session
            product = self._product(s, product_id)
            current = {
                n: getattr(product, n)
                for n in ("sku", "name", "unit", "tax_code", "tax_category", "price")
            }
            current["price_includes_tax"] = product.price_includes_tax
            current["active"] = product.active
            clean = self._clean_product(s, {**current, **data}, product.id)
            for name, value in clean.items():
                setattr(product, name, value)
            self._flush_unique_sku(s, clean["sku"])
            uow.commit()
        return product

    def get_product(self, product_id: int) -> Product:
        with self.app.engine.session_factory() as s:
            return self._product(s, product_id)

    def list_products(
        self, q: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[builtins.list[Product], int]:
        stmt = select(Product)
        if q and q.strip():
            term = q.strip()
            stmt = stmt.where(
                or_(
                    Product.sku.contains(term, autoescape=True),
                    Product.name.contains(term, autoescape=True),
                )
            )
        with self.app.engine.session_factory() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(stmt.order_by(Product.sku).limit(limit).offset(offset)).all()
        return builtins.list(rows), int(total)

    # -- prices --------------------------------------------------------------------

    def set_price(
        self,
        price_list: str,
        product_id: int,
        unit_price: Any,
        min_qty: Any = "0",
        effective_from: date | None = None,
    ) -> PriceListItem:
        """Add a price-list price; the same list, product, min qty and date replaces it."""
        errors: dict[str, str] = {}
        name = _text(errors, {"price_list": price_list}, "price_list", "", 32)
        if not name:
            errors.setdefault("price_list", "required")
        limit = self.app.settings.max_unit_price
        price = parse_quantity(errors, "unit_price", unit_price, positive=False, limit=limit)
        qty_limit = self.app.settings.max_line_qty
        minimum = parse_quantity(errors, "min_qty", min_qty, positive=False, limit=qty_limit)
        start = effective_from or date.today()
        if not isinstance(start, date) or isinstance(start, datetime):
            errors["effective_from"] = "must be a date"
        if errors:
            raise ValidationError(errors)
        with self.app.engine.uow() as uow:
            s = uow.session
            self._product(s, product_id)
            item = s.scalar(
                select(PriceListItem).where(
                    PriceListItem.price_list == name,
                    PriceListItem.product_id == product_id,
                    PriceListItem.min_qty == minimum,
                    PriceListItem.effective_from == start,
                )
            )
            if item is None:
                item = PriceListItem(
                    price_list=name, product_id=product_id, min_qty=minimum, effective_from=start
                )
                s.add(item)
            item.unit_price = price
            uow.commit()
        return item

    def price_for(
        self, session: Session, product_id: int, price_list: str | None, qty: Decimal, on: date
    ) -> tuple[Decimal, bool]:
        """(unit price, includes tax): the list price with the greatest min_qty <= qty
        in force on ``on`` (the latest such), else the product's own price."""
        product = self._product(session, product_id)
        if price_list:
            price = session.scalar(
                select(PriceListItem.unit_price)
                .where(
                    PriceListItem.price_list == price_list,
                    PriceListItem.product_id == product_id,
                    PriceListItem.min_qty <= qty,
                    PriceListItem.effective_from <= on,
                )
                .order_by(
                    PriceListItem.min_qty.desc(),
                    PriceListItem.effective_from.desc(),
                    PriceListItem.id.desc(),
                )
                .limit(1)
            )
            if price is not None:
                return Decimal(price), product.price_includes_tax
        return Decimal(product.price), product.price_includes_tax

    # -- internals -----------------------------------------------------------------

    @staticmethod
    def _product(s: Session, product_id: int) -> Product:
        product = s.get(Product, product_id)
        if product is None:
            raise NotFoundError(f"no product {product_id}")
        return product

    @staticmethod
    def _flush_unique_sku(s: Session, sku: str) -> None:
        try:
            s.flush()
        except IntegrityError:
            s.rollback()
            raise ValidationError({"sku": f"SKU {sku} is taken"}) from None
