"""Data for the worker tests: people, customers, products, orders, and what to check."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.engine.core import PRIORITY_RANK, queue_for
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order, OrderLine
from order_flow.store.tables import audit, instances, outbox
from tests.integration.order_helpers import People, customer, order_body, people, product

TAX_CODE = "1090101010000000000"
#: Where every invoice of a finished order ends: issued, then mailed.
INVOICE_FINAL = "sent"

_po = itertools.count(1)


@dataclass(frozen=True)
class World:
    people: People
    customers: list[Customer]
    products: list[Product]


def world(app: App, customers: int = 10, products: int = 4, tax_code: str = TAX_CODE) -> World:
    """Users, customers with e-mail addresses, and products with plenty of stock."""
    crew = people(app)
    buyers = [
        customer(app, crew.alice, email=f"buyer{i}@example.com", credit_limit="100000000")
        for i in range(customers)
    ]
    goods = [
        product(app, crew.alice, price="100", on_hand="100000", tax_code=tax_code)
        for _ in range(products)
    ]
    return World(crew, buyers, goods)


def place_orders(
    app: App, w: World, n: int, submit: bool = True, priority: str | None = None
) -> list[int]:
    """``n`` orders of one or two lines, each with its own PO (no duplicate holds);
    all of ``priority``, else every fifth urgent. Submitted unless ``submit`` is false."""
    ids = []
    for i in range(n):
        buyer = w.customers[i % len(w.customers)]
        first = w.products[i % len(w.products)]
        lines = [(first.id, str(1 + i % 3))]
        if i % 2:
            lines.append((w.products[(i + 1) % len(w.products)].id, "2"))
        body = order_body(
            buyer.id,
            *lines,
            customer_po=f"PO-{next(_po)}-{uuid.uuid4().hex[:6]}",
            priority=priority or ("urgent" if i % 5 == 0 else "normal"),
        )
        order = app.orders.create(body, w.people.alice)
        if submit:
            app.orders.submit(order.id, w.people.alice)
        ids.append(order.id)
    return ids


def copy_submitted_orders(app: App, templates: list[int], n: int, priority: str) -> list[int]:
    """``n`` submitted orders of ``priority``, copied in turn from the orders ``templates``
    in a few bulk INSERTs (seconds for 50,000): a backlog for the priority tests and
    bench/priority. Each copy gets a number and a PO of its own and the rows the
    engine leaves after ``submit``: its instance in ``submitted`` at version 2 and a
    pending ``order.run_checks`` job on the lane of ``priority``, not yet published
    (``relay_once`` sends them). The audit trail of the copies starts at the checks."""
    orders_t, lines_t = Order.__table__, OrderLine.__table__
    rank, tag, now = PRIORITY_RANK[priority], uuid.uuid4().hex[:8], app.engine.clock()
    with app.engine.session_factory.begin() as s:
        found = s.execute(select(orders_t).where(orders_t.c.id.in_(templates)))
        models = [dict(r._mapping) for r in found]
        models.sort(key=lambda r: templates.index(r["id"]))
        lines: dict[int, list[dict[str, Any]]] = {}
        for line in s.execute(select(lines_t).where(lines_t.c.order_id.in_(templates))):
            lines.setdefault(line.order_id, []).append(dict(line._mapping))
        definition = s.scalar(
            select(instances.c.definition_id).where(instances.c.id == models[0]["instance_id"])
        )
        rows = []
        for i in range(n):
            model = models[i % len(models)]
            row = {k: v for k, v in model.items() if k != "id"}
            row.update(
                number=f"C{tag}-{i}",
                customer_po=f"PO-{tag}-{i}",
                priority=priority,
                instance_id=None,
                idempotency_key=None,
                request_hash=None,
                created_at=now,
            )
            if "state" in row:  # the order's copy of its instance's state
                row["state"] = "submitted"
            rows.append(row)
        returning = orders_t.c.id, orders_t.c.customer_id
        stmt = insert(orders_t).returning(*returning, sort_by_parameter_order=True)
        made = s.execute(stmt, rows).all()
        order_ids = [int(r.id) for r in made]
        stmt = insert(instances).returning(instances.c.id, sort_by_parameter_order=True)
        instance_ids = list(
            s.scalars(
                stmt,
                [
                    dict(
                        workflow="order",
                        definition_id=definition,
                        subject_type="order",
                        subject_id=str(oid),
                        state="submitted",
                        version=2,
                        priority=rank,
                        context={"number": row["number"], "customer": "", "hold_reason": ""},
                        created_by=row["created_by"],
                        created_at=now,
                        updated_at=now,
                        entered_at=now,
                    )
                    for oid, row in zip(order_ids, rows, strict=True)
                ],
            )
        )
        s.execute(
            update(orders_t)
            .where(orders_t.c.id == bindparam("oid"))
            .values(instance_id=bindparam("iid")),
            [dict(oid=o, iid=i) for o, i in zip(order_ids, instance_ids, strict=True)],
        )
        copies = []
        for i, oid in enumerate(order_ids):
            for line in lines[models[i % len(models)]["id"]]:
                copies.append({**{k: v for k, v in line.items() if k != "id"}, "order_id": oid})
        s.execute(insert(lines_t), copies)
        step = "order.run_checks"
        s.execute(
            insert(outbox),
            [
                dict(
                    instance_id=iid,
                    state="submitted",
                    step=step,
                    queue=queue_for(step, rank),
                    idempotency_key=f"{iid}:2:{step}",
                    status="pending",
                    attempts=0,
                    available_at=now,
                    created_at=now,
                    payload={},
                )
                for iid in instance_ids
            ],
        )
    return order_ids


def submit_all(app: App, order_ids: list[int], actor: Actor) -> None:
    for order_id in order_ids:
        app.orders.submit(order_id, actor)


# -- reading the outcome ---------------------------------------------------------------


def order_states(app: App, order_ids: list[int]) -> dict[int, str]:
    with app.engine.session_factory() as s:
        rows = s.execute(
            select(Order.id, instances.c.state)
            .join(instances, instances.c.id == Order.instance_id)
            .where(Order.id.in_(order_ids))
        ).all()
    return {int(i): str(st) for i, st in rows}


def invoice_states(app: App, order_ids: list[int]) -> dict[int, str]:
    """Blue invoice id -> its lifecycle state, for the given orders."""
    with app.engine.session_factory() as s:
        rows = s.execute(
            select(Invoice.id, instances.c.state)
            .join(instances, instances.c.id == Invoice.instance_id)
            .where(Invoice.order_id.in_(order_ids), Invoice.kind == "blue")
        ).all()
    return {int(i): str(st) for i, st in rows}


def all_done(app: App, order_ids: list[int]) -> bool:
    """Every order approved and billed in full, every invoice at the end of its flow."""
    orders = order_states(app, order_ids)
    if len(orders) != len(order_ids) or set(orders.values()) != {"approved"}:
        return False
    with app.engine.session_factory() as s:
        with_invoice = s.scalar(
            select(func.count(func.distinct(Invoice.order_id))).where(
                Invoice.order_id.in_(order_ids), Invoice.kind == "blue"
            )
        )
    if with_invoice != len(order_ids):
        return False
    return set(invoice_states(app, order_ids).values()) == {INVOICE_FINAL}


def invoices(app: App, order_ids: list[int]) -> list[Invoice]:
    with app.engine.session_factory() as s:
        return list(
            s.scalars(
                select(Invoice)
                .where(Invoice.order_id.in_(order_ids), Invoice.kind == "blue")
                .order_by(Invoice.id)
            )
        )


def order_totals(app: App, order_ids: list[int]) -> dict[int, Decimal]:
    with app.engine.session_factory() as s:
        rows = s.execute(select(Order.id, Order.total_gross).where(Order.id.in_(order_ids)))
        return {int(i): Decimal(g) for i, g in rows}


def transitions(app: App, trigger: str) -> int:
    """How many times ``trigger`` fired, on any instance."""
    with app.engine.session_factory() as s:
        return int(
            s.scalar(
                select(func.count()).where(audit.c.kind == "transition", audit.c.trigger == trigger)
            )
            or 0
        )


def assert_numbers_gapless(app: App, order_ids: list[int]) -> None:
    """Exactly one number per blue invoice; per series the numbers are 1..N."""
    by_series: dict[str, list[int]] = {}
    for inv in invoices(app, order_ids):
        assert inv.number is not None and inv.series, f"invoice {inv.id} has no number"
        by_series.setdefault(inv.series, []).append(inv.number)
    for series, numbers in by_series.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), f"gaps in {series}"


def assert_billed_once(app: App, order_ids: list[int]) -> None:
    """The invoices of each order add up to the order to the fen: nothing billed twice."""
    billed: dict[int, Decimal] = {}
    for inv in invoices(app, order_ids):
        billed[inv.order_id] = billed.get(inv.order_id, Decimal("0")) + inv.total_gross
    assert billed == order_totals(app, order_ids)


def pdf_file(app: App, inv: Invoice) -> Path:
    assert inv.pdf_path, f"invoice {inv.id} has no PDF"
    path = Path(inv.pdf_path)
    return path if path.is_absolute() else app.settings.data_dir / path


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def mails_by_kind(received: list[Any]) -> tuple[int, int, int]:
    """(invoice mails with a PDF, other notices, distinct Message-IDs) the sink got."""
    with_pdf = sum(
        1
        for m in received
        if any(part.get_content_type() == "application/pdf" for part in m.walk())
    )
    ids = {m.get("Message-ID") for m in received}
    return with_pdf, len(received) - with_pdf, len(ids)


def assert_one_mail_per_event(received: list[Any], invoices: int, orders: int) -> None:
    """One invoice mail (PDF attached) per invoice and one confirmation per order, no repeats."""
    with_pdf, others, distinct = mails_by_kind(received)
    assert with_pdf == invoices, f"{with_pdf} invoice mails for {invoices} invoices"
    assert others == orders, f"{others} order notices for {orders} approved orders"
    assert distinct == len(received), "a message was sent twice"
