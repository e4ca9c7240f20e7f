"""Products, prices, the VAT rate table, and stock with race-free reservations.

Stock only ever moves through conditional UPDATEs (``... WHERE on_hand - reserved
>= :q``), never by reading a number and writing it back, so concurrent orders
cannot oversell: the database decides who gets the last unit.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Table, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from order_flow.domain.enums import TaxKind
from order_flow.domain.money import to_decimal
from order_flow.domain.tax import RateTable, TaxRate, default_rate_table, validate_tax_class_code
from order_flow.domain.text import gbk_len
from order_flow.engine.actors import Actor
from order_flow.engine.registry import Guard, Step
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import ConflictError, NotFoundError, ValidationError
from order_flow.store.base import QTY, Base
from order_flow.store.catalog import PriceListItem, Product, Reservation, TaxRateRow
from order_flow.store.orders import OrderLine
from order_flow.store.tables import rowcount
from order_flow.store.types import utcnow

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Guards this module provides, by the name the workflow files use.
GUARDS: dict[str, Guard] = {}
#: Step bodies this module provides, by the name the workflow files use.
STEPS: dict[str, Step] = {}

#: How often a partial reservation re-reads availability after losing a race.
PARTIAL_RETRIES = 5
#: Quantities and prices keep 8 decimals; ROUND() keeps SQLite's REAL arithmetic honest.
SCALE = 8
#: The stock columns hold 10 integer digits.
MAX_STOCK = Decimal("9999999999")
_ZERO = Decimal("0")
_STEP = Decimal(1).scaleb(-SCALE)

products = cast(Table, Product.__table__)
order_lines = cast(Table, OrderLine.__table__)
reservations = cast(Table, Reservation.__table__)


def _r(expr: ColumnElement[Any]) -> ColumnElement[Decimal]:
    return func.round(expr, SCALE, type_=QTY)


_available = _r(products.c.on_hand - products.c.reserved)
#: What a line still needs reserved.
_line_need = _r(order_lines.c.qty - order_lines.c.qty_delivered - order_lines.c.qty_reserved)


def _expire(s: Session, model: type[Base], ids: set[int]) -> None:
    """Make loaded objects re-read the rows a Core UPDATE just changed."""
    for obj in builtins.list(s.identity_map.values()):
        if isinstance(obj, model) and getattr(obj, "id", None) in ids:
            s.expire(obj)


def decimal_places(d: Decimal) -> int:
    exponent = d.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def parse_quantity(
    errors: dict[str, str], name: str, raw: Any, *, positive: bool, limit: Decimal
) -> Decimal:
    """A non-negative (or positive) Decimal with at most 8 decimals, up to ``limit``."""
    try:
        value = to_decimal(raw)
    except (TypeError, ValueError) as exc:
        errors[name] = str(exc)
        return _ZERO
    if value < 0 or (positive and value == 0):
        errors[name] = "must be greater than 0" if positive else "must not be negative"
    elif decimal_places(value) > SCALE:
        errors[name] = f"at most {SCALE} decimal places"
    elif value > limit:
        errors[name] = f"at most {limit}"
    return value


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


class CatalogService:
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

    # -- stock ---------------------------------------------------------------------

    def receive(self, product_id: int, qty: Any, actor: Actor) -> Decimal:
        """Add received goods to on_hand; returns the new on_hand."""
        errors: dict[str, str] = {}
        amount = parse_quantity(
            errors, "qty", qty, positive=True, limit=self.app.settings.max_line_qty
        )
        if errors:
            raise ValidationError(errors)
        with self.app.engine.uow() as uow:
            s = uow.session
            on_hand = s.scalar(
                update(products)
                .where(products.c.id == product_id)
                .values(on_hand=_r(products.c.on_hand + amount))
                .returning(products.c.on_hand)
            )
            if on_hand is None:
                raise NotFoundError(f"no product {product_id}")
            uow.commit()
        return Decimal(on_hand)

    def available(self, session: Session, product_id: int) -> Decimal:
        value = session.scalar(select(_available).where(products.c.id == product_id))
        if value is None:
            raise NotFoundError(f"no product {product_id}")
        return Decimal(value).quantize(_STEP)

    def reserve_in(
        self,
        uow: UnitOfWork,
        order_line_id: int,
        product_id: int,
        qty: Decimal,
        allow_partial: bool,
    ) -> Decimal:
        """Reserve up to ``qty`` for the line; returns what was reserved (0 ... qty).

        Never more than the line still needs (qty - delivered - reserved), so a
        repeated call does not double-reserve. Complete policy: all or nothing.
        """
        s = uow.session
        s.flush()  # the caller's new lines must be visible to the Core statements below
        line = s.execute(
            select(order_lines.c.product_id, _line_need).where(order_lines.c.id == order_line_id)
        ).one_or_none()
        if line is None:
            raise NotFoundError(f"no order line {order_line_id}")
        if line[0] != product_id:
            raise ValidationError({"product_id": f"order line {order_line_id} is another product"})
        need = min(to_decimal(qty), Decimal(line[1]).quantize(_STEP))
        if need <= 0:
            return _ZERO
        taken = self._take(s, product_id, need, allow_partial)
        if taken <= 0:
            return _ZERO
        done = s.execute(
            update(order_lines)
            .where(order_lines.c.id == order_line_id, _line_need >= taken)
            .values(qty_reserved=_r(order_lines.c.qty_reserved + taken))
        )
        if rowcount(done) != 1:  # a concurrent reservation for the same line won
            raise ConflictError(f"order line {order_line_id} was reserved concurrently")
        s.add(Reservation(order_line_id=order_line_id, product_id=product_id, qty=taken))
        s.flush()
        _expire(s, Product, {product_id})
        _expire(s, OrderLine, {order_line_id})
        return taken

    def _take(self, s: Session, product_id: int, need: Decimal, allow_partial: bool) -> Decimal:
        """The conditional UPDATE: reserve ``q`` only if ``q`` is still available."""

        def attempt(q: Decimal) -> bool:
            done = s.execute(
                update(products)
                .where(products.c.id == product_id, _available >= q)
                .values(reserved=_r(products.c.reserved + q))
            )
            return rowcount(done) == 1

        if not allow_partial:
            return need if attempt(need) else _ZERO
        for _ in range(PARTIAL_RETRIES):
            q = min(need, self.available(s, product_id))
            if q <= 0:
                return _ZERO
            if attempt(q):
                return q
        return _ZERO  # availability kept moving; the line stays backordered

    def release_order_in(self, uow: UnitOfWork, order_id: int) -> Decimal:
        """Release every active reservation of the order's lines; idempotent."""
        uow.session.flush()
        line_ids = select(order_lines.c.id).where(order_lines.c.order_id == order_id)
        return self._release(uow.session, reservations.c.order_line_id.in_(line_ids))

    def release_stale(self, older_than: datetime) -> int:
        """Release active reservations created before ``older_than``; returns how many."""
        with self.app.engine.uow() as uow:
            ids = uow.session.scalars(
                select(reservations.c.id).where(
                    reservations.c.status == "active", reservations.c.created_at < older_than
                )
            ).all()
            if ids:
                self._release(uow.session, reservations.c.id.in_(ids))
            uow.commit()
        return len(ids)

    def _release(self, s: Session, which: ColumnElement[bool]) -> Decimal:
        rows = s.execute(
            select(reservations.c.id, reservations.c.order_line_id, reservations.c.product_id)
            .where(which, reservations.c.status == "active")
            .order_by(reservations.c.product_id, reservations.c.id)
        ).all()
        total = _ZERO
        now = utcnow()
        for res_id, line_id, product_id in rows:
            # Claim the row first: whoever flips it from active moves the stock, once.
            qty = s.scalar(
                update(reservations)
                .where(reservations.c.id == res_id, reservations.c.status == "active")
                .values(status="released", closed_at=now)
                .returning(reservations.c.qty)
            )
            if qty is None:
                continue
            self._unreserve(s, product_id, line_id, Decimal(qty), consumed=False)
            total += Decimal(qty)
        _expire(s, Product, {r[2] for r in rows})
        _expire(s, OrderLine, {r[1] for r in rows})
        _expire(s, Reservation, {r[0] for r in rows})
        return total

    def _unreserve(
        self, s: Session, product_id: int, line_id: int, qty: Decimal, consumed: bool
    ) -> None:
        values: dict[str, Any] = {"reserved": _r(products.c.reserved - qty)}
        if consumed:
            values["on_hand"] = _r(products.c.on_hand - qty)
        s.execute(update(products).where(products.c.id == product_id).values(**values))
        s.execute(
            update(order_lines)
            .where(order_lines.c.id == line_id)
            .values(qty_reserved=_r(order_lines.c.qty_reserved - qty))
        )

    def consume_in(self, uow: UnitOfWork, order_line_id: int, qty: Decimal) -> Decimal:
        """Take delivered goods out of stock: first from the line's reservations (oldest
        first), the rest from free stock. Returns the quantity taken from reservations.

        Moves on_hand, reserved and the line's qty_reserved; qty_delivered is the
        delivery's to record.
        """
        s = uow.session
        s.flush()
        errors: dict[str, str] = {}
        want = parse_quantity(
            errors, "qty", qty, positive=True, limit=self.app.settings.max_line_qty
        )
        if errors:
            raise ValidationError(errors)
        product_id = s.scalar(
            select(order_lines.c.product_id).where(order_lines.c.id == order_line_id)
        )
        if product_id is None:
            raise NotFoundError(f"no order line {order_line_id}")
        active = s.execute(
            select(reservations.c.id, reservations.c.qty)
            .where(reservations.c.order_line_id == order_line_id, reservations.c.status == "active")
            .order_by(reservations.c.id)
        ).all()
        from_reserved = _ZERO
        now = utcnow()
        for res_id, res_qty in active:
            left = want - from_reserved
            if left <= 0:
                break
            take = min(Decimal(res_qty), left)
            if take == Decimal(res_qty):
                change: dict[str, Any] = {"status": "consumed", "closed_at": now}
            else:  # keep the rest reserved; record the consumed part as its own row
                change = {"qty": _r(reservations.c.qty - take)}
            done = s.execute(
                update(reservations)
                .where(
                    reservations.c.id == res_id,
                    reservations.c.status == "active",
                    _r(reservations.c.qty) >= take,
                )
                .values(**change)
            )
            if rowcount(done) != 1:
                raise ConflictError(f"reservation {res_id} changed concurrently")
            if "qty" in change:
                s.add(
                    Reservation(
                        order_line_id=order_line_id,
                        product_id=product_id,
                        qty=take,
                        status="consumed",
                        closed_at=now,
                    )
                )
            from_reserved += take
        if from_reserved:
            self._unreserve(s, product_id, order_line_id, from_reserved, consumed=True)
        extra = want - from_reserved
        if extra > 0:
            done = s.execute(
                update(products)
                .where(products.c.id == product_id, _available >= extra)
                .values(on_hand=_r(products.c.on_hand - extra))
            )
            if rowcount(done) != 1:
                raise ValidationError({"qty": f"only {from_reserved} reserved and too little free"})
        s.flush()
        _expire(s, Product, {product_id})
        _expire(s, OrderLine, {order_line_id})
        _expire(s, Reservation, {r[0] for r in active})
        return from_reserved

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
