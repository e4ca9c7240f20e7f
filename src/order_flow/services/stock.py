"""Stock: receiving, race-free reservations, releases and delivery consumption.

Stock only ever moves through conditional UPDATEs (``... WHERE on_hand - reserved
>= :q``), never by reading a number and writing it back, so concurrent orders
cannot oversell: the database decides who gets the last unit. The reservation
row is claimed (``WHERE status = 'active'``) before stock moves, so a release
or consumption that runs twice moves stock once.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Table, func, select, update
from sqlalchemy.orm import Session

from order_flow.domain.customer_rules import decimal_places
from order_flow.domain.money import to_decimal
from order_flow.engine.actors import Actor
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import ConflictError, NotFoundError, ValidationError
from order_flow.store.base import QTY, Base
from order_flow.store.catalog import Product, Reservation
from order_flow.store.orders import OrderLine
from order_flow.store.tables import rowcount
from order_flow.store.types import utcnow

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: How often a partial reservation re-reads availability after losing a race.
PARTIAL_RETRIES = 10
#: Quantities keep 8 decimals; ROUND() keeps SQLite's REAL arithmetic honest.
SCALE = 8
#: The stock columns hold 10 integer digits.
MAX_STOCK = Decimal("9999999999")
ZERO = Decimal("0")
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


def parse_quantity(
    errors: dict[str, str], name: str, raw: Any, *, positive: bool, limit: Decimal
) -> Decimal:
    """A non-negative (or positive) Decimal with at most 8 decimals, up to ``limit``."""
    try:
        value = to_decimal(raw)
    except (TypeError, ValueError) as exc:
        errors[name] = str(exc)
        return ZERO
    if value < 0 or (positive and value == 0):
        errors[name] = "must be greater than 0" if positive else "must not be negative"
    elif decimal_places(value) > SCALE:
        errors[name] = f"at most {SCALE} decimal places"
    elif value > limit:
        errors[name] = f"at most {limit}"
    return value


class StockLedger:
    """The stock half of the catalog service (``app.catalog`` inherits it)."""

    app: App

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
            return ZERO
        taken = self._take(s, product_id, need, allow_partial)
        if taken <= 0:
            return ZERO
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
            return need if attempt(need) else ZERO
        for _ in range(PARTIAL_RETRIES):
            q = min(need, self.available(s, product_id))
            if q <= 0:
                return ZERO
            if attempt(q):
                return q
        return ZERO  # availability kept moving; the line stays backordered

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
        total = ZERO
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
        extra = want - min(want, sum((Decimal(q) for _, q in active), ZERO))
        free = self.available(s, product_id) if extra > 0 else ZERO
        if extra > free:  # refuse before writing anything
            raise ValidationError(
                {"qty": f"{want} to deliver, {want - extra} reserved for the line, {free} free"}
            )
        from_reserved = ZERO
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
        if extra > 0:
            done = s.execute(
                update(products)
                .where(products.c.id == product_id, _available >= extra)
                .values(on_hand=_r(products.c.on_hand - extra))
            )
            if rowcount(done) != 1:
                raise ConflictError(f"free stock of product {product_id} was taken concurrently")
        s.flush()
        _expire(s, Product, {product_id})
        _expire(s, OrderLine, {order_line_id})
        _expire(s, Reservation, {r[0] for r in active})
        return from_reserved
