"""Orders: create (from scratch, a template or a copy), submit, cancel, close, amend, deliver.

The lifecycle state lives in the order's workflow instance; delivered and billed
percentages are computed from the lines, never stored. Every writing method is
one unit of work; the ``*_in`` variants join a caller's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.registry import Guard, Step
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import (
    ConflictError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from order_flow.services.checks import fully_delivered_and_billed_in
from order_flow.services.order_input import (
    Progress,
    order_number,
    parse_order,
    parse_template,
    progress_of,
    request_hash,
    revision_number,
)
from order_flow.services.order_lines import apply, as_input, copy_line, prepare, product_errors
from order_flow.store.customers import Customer
from order_flow.store.orders import Order, OrderLine, OrderTemplate
from order_flow.store.tables import instances

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Guards this module provides, by the name the workflow files use (see checks.py).
GUARDS: dict[str, Guard] = {}
#: Step bodies this module provides (see checks.py).
STEPS: dict[str, Step] = {}

# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    """One row of a list: the order and its lifecycle state."""

    order: Order
    state: str


# -- the service ------------------------------------------------------------------------


class OrderService:
    def __init__(self, app: App) -> None:
        self.app = app

    # -- reading ------------------------------------------------------------------

    def get(self, order_id: int) -> Order:
        with self.app.engine.session_factory() as s:
            return self._load(s, order_id)

    def state(self, order_id: int) -> str:
        with self.app.engine.session_factory() as s:
            return self.state_in(s, self._load(s, order_id))

    def state_in(self, s: Session, order: Order) -> str:
        return str(s.scalar(select(instances.c.state).where(instances.c.id == order.instance_id)))

    def progress(self, order: Order) -> Progress:
        return progress_of(order.lines)

    def list(
        self,
        *,
        customer_id: int | None = None,
        state: str | None = None,
        priority: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[OrderRow], int]:
        """Newest first, with the total count of the filtered set."""
        stmt = select(Order, instances.c.state).join(instances, instances.c.id == Order.instance_id)
        if customer_id is not None:
            stmt = stmt.where(Order.customer_id == customer_id)
        if state:
            stmt = stmt.where(instances.c.state == state)
        if priority:
            stmt = stmt.where(Order.priority == priority)
        if q and q.strip():
            like = f"%{q.strip()}%"
            names = select(Customer.id).where(Customer.name.ilike(like))
            stmt = stmt.where(
                or_(
                    Order.number.ilike(like),
                    Order.customer_po.ilike(like),
                    Order.customer_id.in_(names),
                )
            )
        with self.app.engine.session_factory() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            page = stmt.order_by(Order.id.desc()).limit(max(1, min(limit, 500))).offset(offset)
            rows = [OrderRow(o, st) for o, st in s.execute(page).all()]
        return rows, int(total)

    # -- creating -----------------------------------------------------------------

    def create(
        self, data: Mapping[str, Any], actor: Actor, idempotency_key: str | None = None
    ) -> Order:
        digest = request_hash(data) if idempotency_key else None
        if idempotency_key:
            existing = self._by_key(idempotency_key, digest)
            if existing is not None:
                return existing
        try:
            with self.app.engine.uow() as uow:
                order = self.create_in(
                    uow, data, actor, idempotency_key=idempotency_key, body_hash=digest
                )
                uow.commit()
                return order
        except IntegrityError:
            if idempotency_key:  # a concurrent request with the same key won the race
                existing = self._by_key(idempotency_key, digest)
                if existing is not None:
                    return existing
            raise

    def create_in(
        self,
        uow: UnitOfWork,
        data: Mapping[str, Any],
        actor: Actor,
        *,
        idempotency_key: str | None = None,
        body_hash: str | None = None,
        template_id: int | None = None,
        copied_from_id: int | None = None,
    ) -> Order:
        s = uow.session
        today = self.today()
        parsed = parse_order(data, today, self.app.settings)
        customer, lines = prepare(self.app.catalog, s, parsed, today)
        order = Order(
            number=f"tmp-{uuid.uuid4().hex[:28]}",
            customer_id=customer.id,
            created_by=actor.name,
            created_at=self.app.engine.clock(),
            idempotency_key=idempotency_key,
            request_hash=body_hash,
            template_id=template_id,
            copied_from_id=copied_from_id,
        )
        apply(order, parsed, lines)
        s.add(order)
        s.flush()
        # The id is the sequence: unique under any concurrency, no counter row to lock.
        self._set_number(s, order, order_number(today, order.id))
        self._start(uow, order, customer, actor)
        return order

    def update_draft(
        self, order_id: int, data: Mapping[str, Any], actor: Actor, expected_version: int
    ) -> Order:
        """Change a draft: the given fields replace the current ones (``lines`` all at once)."""
        with self.app.engine.uow() as uow:
            s = uow.session
            order = self._load(s, order_id)
            if self.state_in(s, order) != "draft":
                raise TransitionNotAllowedError("approved orders are frozen; amend instead")
            if order.version != expected_version:
                raise ConflictError(
                    f"order {order_id} changed: it is at version {order.version}, "
                    f"you saw {expected_version}"
                )
            merged = {**as_input(order, with_prices=True), **data}
            today = self.today()
            parsed = parse_order(merged, today, self.app.settings)
            customer, lines = prepare(self.app.catalog, s, parsed, today)
            order.lines.clear()
            s.flush()  # old line numbers go before the new ones take them
            order.customer_id = customer.id
            apply(order, parsed, lines)
            s.flush()
            s.execute(
                update(instances)
                .where(instances.c.id == order.instance_id)
                .values(
                    priority=_rank(parsed.priority),
                    context={**self._context(s, order), "customer": customer.name},
                )
            )
            uow.commit()
            return order

    def create_template(
        self, customer_id: int, name: str, lines: Sequence[Mapping[str, Any]], actor: Actor
    ) -> OrderTemplate:
        parsed, errors = parse_template(name, lines, self.app.settings)
        with self.app.engine.uow() as uow:
            s = uow.session
            if s.get(Customer, customer_id) is None:
                errors["customer_id"] = "no such customer"
            errors.update(product_errors(s, parsed))
            if errors:
                raise ValidationError(errors)
            template = OrderTemplate(
                customer_id=customer_id,
                name=name.strip(),
                lines=[ln.as_json() for ln in parsed],
                created_by=actor.name,
            )
            s.add(template)
            uow.commit()
            return template

    def from_template(
        self, template_id: int, actor: Actor, overrides: Mapping[str, Any] | None = None
    ) -> Order:
        with self.app.engine.uow() as uow:
            template = uow.session.get(OrderTemplate, template_id)
            if template is None:
                raise NotFoundError(f"order template {template_id} does not exist")
            data = {
                "customer_id": template.customer_id,
                "pricing": template.pricing,
                "notes": template.notes,
                "lines": list(template.lines),
                **(overrides or {}),
            }
            order = self.create_in(uow, data, actor, template_id=template.id)
            uow.commit()
            return order

    def copy(self, order_id: int, actor: Actor) -> Order:
        """A new draft with the same customer and lines at today's prices (no PO, no date)."""
        with self.app.engine.uow() as uow:
            source = self._load(uow.session, order_id)
            data = as_input(source, with_prices=False)
            data.pop("customer_po", None)
            data.pop("promised_date", None)
            order = self.create_in(uow, data, actor, copied_from_id=source.id)
            uow.commit()
            return order

    # -- moving through the lifecycle -------------------------------------------------

    def submit(self, order_id: int, actor: Actor, expected_version: int | None = None) -> Order:
        """Fire ``submit``; ``expected_version`` is the order's version the clerk saw."""
        with self.app.engine.uow() as uow:
            order = self._load(uow.session, order_id)
            if expected_version is not None and order.version != expected_version:
                raise ConflictError(f"order {order_id} changed since you opened it")
            self.app.engine.fire_in(uow, self._instance(order), "submit", actor)
            uow.commit()
            return order

    def cancel(self, order_id: int, actor: Actor, reason: str) -> Order:
        return self._finish(order_id, "cancel", actor, reason)

    def close(self, order_id: int, actor: Actor, reason: str) -> Order:
        """Short-close an approved order: the undelivered rest and its reservations go."""
        return self._finish(order_id, "close", actor, reason)

    def amend(self, order_id: int, actor: Actor, reason: str) -> Order:
        """Supersede an approved order by revision N+1, a draft with the same lines."""
        with self.app.engine.uow() as uow:
            s = uow.session
            old = self._load(s, order_id)
            self.app.engine.fire_in(uow, self._instance(old), "amend", actor, reason=reason)
            self.app.catalog.release_order_in(uow, old.id)
            customer = s.get(Customer, old.customer_id)
            assert customer is not None  # a foreign key
            new = Order(
                number=revision_number(old.number, old.revision + 1),
                revision=old.revision + 1,
                previous_id=old.id,
                customer_id=old.customer_id,
                pricing=old.pricing,
                priority=old.priority,
                promised_date=old.promised_date,
                customer_po=old.customer_po,
                notes=old.notes,
                special=old.special,
                signoff_groups=list(old.signoff_groups or []),
                template_id=old.template_id,
                total_net=old.total_net,
                total_tax=old.total_tax,
                total_gross=old.total_gross,
                created_by=actor.name,
                created_at=self.app.engine.clock(),
                lines=[copy_line(ln) for ln in old.lines],
            )
            s.add(new)
            s.flush()
            self._start(uow, new, customer, actor)
            uow.commit()
            return new

    def record_delivery(
        self, order_id: int, quantities: Mapping[int, Decimal | str], actor: Actor
    ) -> Order:
        """Consume reserved stock for delivered quantities; complete the order when done."""
        with self.app.engine.uow() as uow:
            s = uow.session
            order = self._load(s, order_id)
            state = self.state_in(s, order)
            if state != "approved":
                raise TransitionNotAllowedError(f"deliveries need an approved order, not {state}")
            by_id = {ln.id: ln for ln in order.lines}
            errors: dict[str, str] = {}
            plan: list[tuple[OrderLine, Decimal]] = []
            for line_id, raw in quantities.items():
                key = f"quantities[{line_id}]"
                line = by_id.get(int(line_id)) if str(line_id).isdigit() else None
                qty = _decimal(raw)
                if line is None:
                    errors[key] = "not a line of this order"
                elif qty is None or qty <= 0:
                    errors[key] = "must be a number greater than 0"
                elif qty > line.qty_reserved:  # reserved and not yet delivered
                    errors[key] = f"at most {line.qty_reserved} is reserved"
                else:
                    plan.append((line, qty))
            if errors or not plan:
                raise ValidationError(errors or {"quantities": "nothing to deliver"})
            for line, qty in plan:
                self.app.catalog.consume_in(uow, line.id, qty)  # moves qty_reserved down
                s.execute(
                    update(OrderLine)
                    .where(OrderLine.id == line.id)
                    .values(qty_delivered=OrderLine.qty_delivered + qty)
                    .execution_options(synchronize_session=False)
                )
            s.expire_all()
            order = self._load(s, order_id)
            self.complete_if_done_in(uow, order)
            uow.commit()
            return order

    def complete_if_done_in(self, uow: UnitOfWork, order: Order) -> bool:
        """Fire ``fulfilled`` when every line is delivered and billed on issued invoices
        (the invoice.issue step calls it too)."""
        s = uow.session
        s.flush()
        # Locked first, so a delivery and the last issue committing side by side cannot
        # each miss the other's half and leave the order approved for good.
        s.execute(select(Order.id).where(Order.id == order.id).with_for_update())
        if self.state_in(s, order) != "approved" or not fully_delivered_and_billed_in(s, order.id):
            return False
        self.app.engine.fire_in(uow, self._instance(order), "fulfilled", SYSTEM)
        return True

    # -- pieces ------------------------------------------------------------------------

    def today(self) -> date:
        """Today in the business time zone (order numbers, promised dates, VAT rates)."""
        now: datetime = self.app.engine.clock()
        return now.astimezone(ZoneInfo(self.app.settings.timezone)).date()

    def _load(self, s: Session, order_id: int) -> Order:
        order = s.get(Order, order_id)
        if order is None:
            raise NotFoundError(f"order {order_id} does not exist")
        return order

    def _instance(self, order: Order) -> int:
        if order.instance_id is None:
            raise NotFoundError(f"order {order.id} has no workflow instance")
        return order.instance_id

    def _context(self, s: Session, order: Order) -> dict[str, Any]:
        stmt = select(instances.c.context).where(instances.c.id == order.instance_id)
        return dict(s.scalar(stmt) or {})

    def _by_key(self, key: str, digest: str | None) -> Order | None:
        with self.app.engine.session_factory() as s:
            order = s.scalar(select(Order).where(Order.idempotency_key == key))
        if order is not None and order.request_hash != digest:
            raise ConflictError("Idempotency-Key reused with a different body")
        return order

    def _set_number(self, s: Session, order: Order, number: str) -> None:
        # A plain UPDATE: setting the attribute would bump the optimistic-lock
        # version of a row nobody has seen yet.
        s.execute(update(Order).where(Order.id == order.id).values(number=number))
        set_committed_value(order, "number", number)

    def _start(self, uow: UnitOfWork, order: Order, customer: Customer, actor: Actor) -> None:
        result = self.app.engine.start_in(
            uow,
            "order",
            "order",
            str(order.id),
            actor,
            context={"number": order.number, "customer": customer.name, "hold_reason": ""},
            priority=order.priority,
        )
        uow.session.execute(
            update(Order).where(Order.id == order.id).values(instance_id=result.instance_id)
        )
        set_committed_value(order, "instance_id", result.instance_id)

    def _finish(self, order_id: int, trigger: str, actor: Actor, reason: str) -> Order:
        with self.app.engine.uow() as uow:
            order = self._load(uow.session, order_id)
            self.app.engine.fire_in(uow, self._instance(order), trigger, actor, reason=reason)
            self.app.catalog.release_order_in(uow, order.id)
            uow.commit()
            return order


def _rank(priority: str) -> int:
    return {"urgent": 0, "high": 1, "normal": 2, "low": 3}[priority]


def _decimal(raw: object) -> Decimal | None:
    if isinstance(raw, Decimal | int | str) and not isinstance(raw, bool):
        try:
            value = Decimal(str(raw).strip())
        except ArithmeticError:
            return None
        return value if value.is_finite() else None
    return None
