"""Builders for the order tests: people, customers, products, orders, and the worker."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.domain.taxid import compute_uscc_check
from order_flow.engine.actors import Actor
from order_flow.engine.steps import run_job
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.orders import Order
from order_flow.store.tables import audit, instances, outbox
from tests.integration.helpers import add_user, state_of

_serial = itertools.count(1)


@dataclass(frozen=True)
class People:
    alice: Actor  # the clerk who enters orders
    bob: Actor
    carol: Actor
    boss: Actor  # a supervisor
    picker: Actor  # warehouse
    maker: Actor  # production


def people(app: App) -> People:
    app.catalog.seed_tax_rates()
    return People(
        alice=add_user(app, "alice", groups=("sales", "warehouse")),
        bob=add_user(app, "bob"),
        carol=add_user(app, "carol"),
        boss=add_user(app, "boss", role="supervisor"),
        picker=add_user(app, "picker", groups=("warehouse",)),
        maker=add_user(app, "maker", groups=("production",)),
    )


def customer(app: App, actor: Actor, **fields: Any) -> Customer:
    n = next(_serial)
    first17 = f"91350100M{n:08d}"
    data = {
        "name": f"测试客户{n}有限公司",
        "tax_id": first17 + compute_uscc_check(first17),
        "credit_limit": "1000000",
        **fields,
    }
    return app.customers.create(data, actor).customer


def product(
    app: App, actor: Actor, price: str = "100", on_hand: str = "1000", **fields: Any
) -> Product:
    n = next(_serial)
    data = {"sku": f"SKU-{n}", "name": f"产品{n}", "price": price, "on_hand": on_hand, **fields}
    return app.catalog.create_product(data, actor)


def order_body(customer_id: int, *lines: tuple[int, str], **extra: Any) -> dict[str, Any]:
    """An order of (product_id, qty) lines at catalog prices."""
    return {
        "customer_id": customer_id,
        "lines": [{"product_id": pid, "qty": qty} for pid, qty in lines],
        **extra,
    }


def submit(app: App, order: Order, actor: Actor) -> str:
    """Submit and let the worker run every step; the order's state afterwards."""
    app.orders.submit(order.id, actor)
    work(app)
    return state(app, order)


def work(app: App) -> int:
    """The worker, for order jobs only: like engine.steps.drain, but the invoices'
    own steps (issuing, notifying) are other tests' business."""
    ran = 0
    while True:
        with app.engine.session_factory() as s:
            ids = s.scalars(
                select(outbox.c.id)
                .join(instances, instances.c.id == outbox.c.instance_id)
                .where(
                    instances.c.workflow == "order",
                    outbox.c.status.in_(("pending", "published")),
                    outbox.c.available_at <= app.engine.clock(),
                )
                .order_by(outbox.c.id)
            ).all()
        if not ids:
            return ran
        for job_id in ids:
            run_job(app, job_id)
            ran += 1


def state(app: App, order: Order) -> str:
    assert order.instance_id is not None
    return state_of(app, order.instance_id)[0]


def reload(app: App, order: Order) -> Order:
    return app.orders.get(order.id)


def count(app: App, model: type[Any]) -> int:
    with app.engine.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def triggers(app: App, order: Order) -> list[str]:
    with app.engine.session_factory() as s:
        rows = s.scalars(
            select(audit.c.trigger)
            .where(
                audit.c.instance_id == order.instance_id, audit.c.kind.in_(("start", "transition"))
            )
            .order_by(audit.c.id)
        )
        return [t or "start" for t in rows]


def stock(app: App, product_id: int) -> tuple[Decimal, Decimal]:
    """(on hand, reserved) of a product."""
    with app.engine.session_factory() as s:
        p = s.get_one(Product, product_id)
        return p.on_hand, p.reserved
