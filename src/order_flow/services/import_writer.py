"""Writing a chunk of imported orders: one transaction, set-based statements.

Each order is checked and priced exactly as ``OrderService.create_in`` does it
(order_input.parse_order, order_lines.prepare and apply); what differs is only how
the rows reach the database: one INSERT per table for the whole chunk instead of a
unit-of-work flush per order, and the workflow instances started and submitted by
``engine.batch.start_many_in``. An order that fails a check writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, insert, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from order_flow.engine.actors import Actor
from order_flow.engine.batch import NewInstance, start_many_in
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import ValidationError
from order_flow.services.order_input import order_number, parse_order
from order_flow.services.order_lines import apply, prepare
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.imports import ImportKey
from order_flow.store.orders import Order, OrderLine

if TYPE_CHECKING:
    from order_flow.bootstrap import App

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_LINE_COLUMNS = (
    "line_no", "product_id", "description", "qty", "unit_price", "tax_category", "tax_rate",
    "net", "tax", "gross",
)  # fmt: skip
#: A chunk that lost an import key to a concurrent import is redone this often.
RETRIES = 3
#: Customers and products kept loaded across chunks (then the cache starts over).
HELD_MAX = 20_000


@dataclass(frozen=True)
class Outcome:
    """What became of one order: created, already (imported before) or rejected."""

    status: str
    order_id: int | None = None
    number: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One order to write: its import key (None when it has errors) and body."""

    key: tuple[int, str] | None
    data: Mapping[str, Any]
    errors: Mapping[str, str] = field(default_factory=dict)


class OrderWriter:
    """Use as ``with OrderWriter(app, actor, batch_id) as w: w.write(chunk) ...``: one
    session for the run, a commit per chunk; the customers and products it loaded stay
    in the session, so ``prepare``'s look-ups never go back to the database."""

    def __init__(self, app: App, actor: Actor, batch_id: int | None) -> None:
        self.app, self.actor, self.batch_id = app, actor, batch_id
        self._uow: UnitOfWork | None = None
        self._held: dict[tuple[type, int], object] = {}

    def __enter__(self) -> OrderWriter:
        self._uow = self.app.engine.uow().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._uow is not None:
            self._uow.__exit__(None, None, None)
            self._uow = None

    def write(self, candidates: Sequence[Candidate]) -> list[Outcome]:
        """One transaction for the chunk; redone when a concurrent import won a key."""
        uow = self._uow
        assert uow is not None, "OrderWriter used outside its with-block"
        for attempt in range(RETRIES):
            try:
                outcomes = self._write_in(uow, candidates)
                uow.commit()
                return outcomes
            except IntegrityError:
                uow.rollback()
                self._held.clear()  # the rollback expired them
                if attempt == RETRIES - 1:
                    raise
            except BaseException:
                uow.rollback()
                raise
        raise AssertionError("unreachable")

    def _write_in(self, uow: UnitOfWork, candidates: Sequence[Candidate]) -> list[Outcome]:
        s = uow.session
        today = self.app.orders.today()
        now = self.app.engine.clock()
        existing = _existing(s, [c.key for c in candidates if c.key is not None])
        self._hold(s, candidates)
        outcomes: list[Outcome | None] = [None] * len(candidates)
        new: list[tuple[int, Any, str]] = []
        for i, c in enumerate(candidates):
            if c.errors:
                outcomes[i] = Outcome("rejected", errors=c.errors)
            elif c.key is not None and c.key in existing:
                outcomes[i] = Outcome("already", *existing[c.key])
            else:
                parsed = parse_order(c.data, today, self.app.settings)
                try:
                    customer, lines = prepare(self.app.catalog, s, parsed, today)
                except ValidationError as exc:
                    outcomes[i] = Outcome("rejected", errors=exc.errors)
                    continue
                head = SimpleNamespace(customer_id=customer.id)
                apply(cast(Order, head), parsed, lines)  # it only sets attributes
                new.append((i, head, customer.name))
        if new:
            for i, order_id, number in self._insert(uow, new, candidates, today, now):
                outcomes[i] = Outcome("created", order_id, number)
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    def _insert(
        self,
        uow: UnitOfWork,
        new: list[tuple[int, Any, str]],
        candidates: Sequence[Candidate],
        today: Any,
        now: Any,
    ) -> list[tuple[int, int, str]]:
        s, actor = uow.session, self.actor
        # The ids first, so each row is written once, complete: the order's number and
        # instance are known when it is inserted (no UPDATE after the fact).
        ids = allocate_ids(s, _ORDERS, len(new))
        numbers = [order_number(today, i) for i in ids]
        starts = [
            NewInstance(
                str(order_id), {"number": n, "customer": name, "hold_reason": ""}, h.priority
            )
            for order_id, n, (_, h, name) in zip(ids, numbers, new, strict=True)
        ]
        started = start_many_in(
            self.app.engine, uow, "order", "order", starts, actor, fire="submit"
        )
        heads = [
            dict(
                id=order_id, number=n, revision=1, customer_id=h.customer_id,
                instance_id=r.instance_id, pricing=h.pricing, priority=h.priority,
                promised_date=h.promised_date, customer_po=h.customer_po, notes=h.notes,
                special=h.special, signoff_groups=h.signoff_groups, total_net=h.total_net,
                total_tax=h.total_tax, total_gross=h.total_gross, created_by=actor.name,
                created_at=now, version=1,
            )
            for order_id, n, r, (_, h, _) in zip(ids, numbers, started, new, strict=True)
        ]  # fmt: skip
        mirror = self.app.engine.mirrors.get("order")
        if mirror is not None:  # the engine's copy of the state (and when it was entered)
            for head, r in zip(heads, started, strict=True):
                head.update(mirror.values(r.to_state, now))
        s.execute(insert(_ORDERS), heads)
        s.execute(
            insert(_LINES),
            [
                {"order_id": order_id, **{c: getattr(ln, c) for c in _LINE_COLUMNS}}
                for order_id, (_, h, _) in zip(ids, new, strict=True)
                for ln in h.lines
            ],
        )
        keys = [
            dict(customer_id=key[0], customer_po=key[1], order_id=order_id,
                 batch_id=self.batch_id, created_at=now)
            for order_id, (i, _, _) in zip(ids, new, strict=True)
            if (key := candidates[i].key) is not None
        ]  # fmt: skip
        if keys:
            s.execute(insert(ImportKey), keys)
        return [(i, order_id, n) for (i, _, _), order_id, n in zip(new, ids, numbers, strict=True)]

    def _hold(self, s: Session, candidates: Sequence[Candidate]) -> None:
        """Load the chunk's customers and products not held yet, two queries in all."""
        customer_ids, product_ids = set(), set()
        for c in candidates:
            if c.errors:
                continue
            customer_ids.add(c.data.get("customer_id"))
            for line in c.data.get("lines") or ():
                if isinstance(line, Mapping):
                    product_ids.add(line.get("product_id"))
        if len(self._held) > HELD_MAX:
            self._held.clear()
        customers = self._missing(Customer, customer_ids)
        if customers:
            stmt = select(Customer).where(Customer.id.in_(customers))
            for buyer in s.scalars(stmt.options(lazyload(Customer.contacts))):
                self._held[(Customer, buyer.id)] = buyer
        products = self._missing(Product, product_ids)
        if products:
            for p in s.scalars(select(Product).where(Product.id.in_(products))):
                self._held[(Product, p.id)] = p

    def _missing(self, model: type, ids: set[Any]) -> list[int]:
        return sorted(i for i in ids if type(i) is int and (model, i) not in self._held)


def allocate_ids(s: Session, table: Table, n: int) -> list[int]:
    """``n`` new ids of ``table``: from its sequence on PostgreSQL; on SQLite, after the
    highest one (the unit of work holds the write lock, so nobody takes them meanwhile)."""
    if s.get_bind().dialect.name == "postgresql":
        stmt = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
        return [int(i) for i in s.scalars(stmt, {"t": table.name, "n": n})]
    top = s.scalar(select(func.max(table.c.id))) or 0
    return list(range(top + 1, top + n + 1))


def _existing(
    s: Session, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], tuple[int, str]]:
    """Orders that already carry these (customer, PO) keys: the first of each."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    pair = tuple_(Order.customer_id, Order.customer_po)
    stmt = (
        select(Order.customer_id, Order.customer_po, Order.id, Order.number)
        .where(pair.in_(wanted))
        .order_by(Order.id)
    )
    found: dict[tuple[int, str], tuple[int, str]] = {}
    for customer_id, po, order_id, number in s.execute(stmt).all():
        found.setdefault((customer_id, str(po)), (order_id, number))
    return found
