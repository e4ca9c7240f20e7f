"""Orders for the worker benchmarks (bench/pipeline, bench/backlog): a migrated
PostgreSQL database, customers and products through the real services, draft
orders, the floor's instances, and a LISTEN/NOTIFY hook that tells the benchmark
when an order reached the end of the automatic path.

Every order is one line or two of products with plenty of stock, at catalog
prices (far below the double-review amount), for a customer with a generous
credit limit and an e-mail address, with a PO reference of its own (no duplicate
hold): so it runs submit -> order.run_checks -> approved ->
order.reserve_and_invoice (+ the order-confirmed mail) -> one invoice pending ->
invoice.prepare -> issuing -> invoice.issue (number, PDF) -> issued ->
invoice.notify (mail) -> sent, with nobody touching it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.domain.taxid import compute_uscc_check
from order_flow.engine.actors import Actor
from order_flow.engine.outbox import open_incidents
from order_flow.engine.versions import deploy_files
from order_flow.store import migrate
from order_flow.store.db import make_engine
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order
from order_flow.store.tables import audit, instances, outbox, workflow_versions
from order_flow.store.types import utcnow

ROOT = Path(__file__).resolve().parent.parent
CLERK = Actor("bench", "clerk", frozenset({"sales"}))
TAX_CODE = "1090101010000000000"
#: The settings every process of the benchmark shares (orders are not from templates).
SETTINGS = {"double_review_without_template": False}
#: Where an order's automatic path ends: its invoice's instance enters this state.
FINAL = "sent"
FLOOR_YAML = """\
name: bench_floor
initial: s
states:
  - {name: s}
  - {name: done, final: true}
transitions:
  - {trigger: hop, source: s, dest: done, actor: system}
"""
#: The order's automatic path as floor hops: [queue, transitions, next hops]. Hop 0 is
#: order.run_checks (checks_passed), 1 order.reserve_and_invoice (starts the invoice),
#: 2 notify.order (the confirmation mail), 3 invoice.prepare (prepared), 4
#: invoice.issue (issue), 5 invoice.notify (sent). bench/pipeline checks these counts
#: against what the real run wrote.
PIPELINE_SHAPE: list[list[Any]] = [
    ["default", 1, [1]],
    ["default", 1, [2, 3]],
    ["email", 0, []],
    ["default", 1, [4]],
    ["pdf", 1, [5]],
    ["email", 1, []],
]
PIPELINE_DONE_HOP = 5
NOTIFY_SQL = [
    """CREATE OR REPLACE FUNCTION bench_done() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM pg_notify('bench_done', NEW.instance_id::text); RETURN NULL; END $$""",
    """CREATE TRIGGER bench_done AFTER INSERT ON audit_events FOR EACH ROW
       WHEN (NEW.to_state IN ('sent', 'done')) EXECUTE FUNCTION bench_done()""",
]


def prepare_database(url: str, tmp: Path) -> None:
    """Migrate, deploy the workflows (and the floor's), add the end-of-path hook."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            for sql in NOTIFY_SQL:
                conn.execute(text(sql))
    finally:
        engine.dispose()
    floor = tmp / "bench_floor.yaml"
    floor.write_text(FLOOR_YAML, encoding="utf-8")
    app = bootstrap(Settings(database_url=url, data_dir=tmp, workflows_dir=tmp))
    try:
        deploy_files(app.engine, [ROOT / "workflows", floor])
    finally:
        app.close()


def seed_world(app: App, customers: int, products: int) -> tuple[list[int], list[int]]:
    """Customers (with e-mail, credit) and products (with stock), through the services."""
    app.catalog.seed_tax_rates()
    customer_ids, product_ids = [], []
    for n in range(1, customers + 1):
        first17 = f"91350100M{n:08d}"
        data = {
            "name": f"压测客户{n}贸易有限公司",
            "tax_id": first17 + compute_uscc_check(first17),
            "credit_limit": "9000000000",
            "email": f"buyer{n}@example.com",
        }
        customer_ids.append(app.customers.create(data, CLERK).customer.id)
    for n in range(1, products + 1):
        data = {
            "sku": f"BENCH-{n}",
            "name": f"压测产品{n}",
            "price": str(50 + n % 7 * 10),
            "on_hand": "900000000",
            "tax_code": TAX_CODE,
        }
        product_ids.append(app.catalog.create_product(data, CLERK).id)
    return customer_ids, product_ids


def order_lines(i: int, product_ids: Sequence[int]) -> list[tuple[int, str]]:
    """One line, or two for every other order; 1 to 3 pieces."""
    first = product_ids[i % len(product_ids)]
    lines = [(first, str(1 + i % 3))]
    if i % 2:
        lines.append((product_ids[(i * 7 + 1) % len(product_ids)], "2"))
    return lines


def create_drafts(
    app: App, run: str, n: int, customer_ids: Sequence[int], product_ids: Sequence[int]
) -> list[int]:
    """``n`` draft orders through OrderService.create (the clerk's path)."""
    ids = []
    for i in range(n):
        body = {
            "customer_id": customer_ids[i % len(customer_ids)],
            "customer_po": f"PO-{run}-{i}",
            "lines": [{"product_id": p, "qty": q} for p, q in order_lines(i, product_ids)],
        }
        ids.append(app.orders.create(body, CLERK).id)
    return ids


def floor_instances(app: App, n: int) -> list[int]:
    """``n`` instances of the floor's workflow in state ``s`` (one multi-row INSERT)."""
    now = utcnow()
    with app.engine.session_factory.begin() as s:
        definition = s.scalar(
            select(workflow_versions.c.id).where(workflow_versions.c.name == "bench_floor")
        )
        rows = [
            dict(
                workflow="bench_floor",
                definition_id=definition,
                subject_type="bench",
                subject_id=str(i),
                state="s",
                version=1,
                priority=2,
                context={},
                created_by="bench",
                created_at=now,
                updated_at=now,
                entered_at=now,
            )  # fmt: skip
            for i in range(n)
        ]
        return list(s.scalars(insert(instances).returning(instances.c.id), rows))


class DoneListener:
    """LISTEN bench_done on a connection of its own; ``wait(timeout)`` returns how many
    orders (or floor items) reached their end since the last call."""

    def __init__(self, url: str) -> None:
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("LISTEN bench_done")

    def wait(self, timeout: float) -> int:
        got = 0
        for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            got += 1
        # and whatever else is already there, without waiting
        for _ in self.conn.notifies(timeout=0.0):
            got += 1
        return got

    def close(self) -> None:
        self.conn.close()


def jobs_and_transitions(app: App, order_ids: Sequence[int]) -> tuple[int, int]:
    """What the workers did for these orders: outbox jobs, and system transitions
    (an instance start counts: the invoice's); the clerk's submit is not theirs."""
    with app.engine.session_factory() as s:
        order_inst = select(Order.instance_id).where(Order.id.in_(order_ids))
        inv_inst = select(Invoice.instance_id).where(Invoice.order_id.in_(order_ids))
        mine = instances.c.id.in_(order_inst.union_all(inv_inst).scalar_subquery())
        inst_ids = select(instances.c.id).where(mine)
        jobs = s.scalar(select(func.count()).where(outbox.c.instance_id.in_(inst_ids)))
        moves = s.scalar(
            select(func.count()).where(
                audit.c.instance_id.in_(inst_ids),
                audit.c.actor == "system",
                audit.c.kind.in_(("transition", "start")),
            )
        )
    return int(jobs or 0), int(moves or 0)


def check_pipeline(app: App, order_ids: Sequence[int], pdf: bool) -> dict[str, int]:
    """Every order's one invoice at FINAL, with a stored PDF if ``pdf`` else none, every
    job done, no incident; else raise."""
    with app.engine.session_factory() as s:
        with_pdf = s.scalar(
            select(func.count()).where(
                Invoice.order_id.in_(order_ids), Invoice.pdf_path.is_not(None)
            )
        )
        if with_pdf != (len(order_ids) if pdf else 0):
            raise RuntimeError(f"{with_pdf} of {len(order_ids)} invoices have a PDF (pdf={pdf})")
        states = dict(
            s.execute(
                select(instances.c.state, func.count())
                .join(Invoice, Invoice.instance_id == instances.c.id)
                .where(Invoice.order_id.in_(order_ids))
                .group_by(instances.c.state)
            ).all()
        )
        status = dict(
            s.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
        )
    if states != {FINAL: len(order_ids)}:
        raise RuntimeError(f"invoices of {len(order_ids)} orders by state: {states}")
    if set(status) - {"done"}:
        raise RuntimeError(f"outbox jobs not done: {status}")
    if incidents := open_incidents(app):
        raise RuntimeError(f"{len(incidents)} incident(s), e.g. {incidents[0].title}")
    return {str(k): int(v) for k, v in status.items()}


def pipeline_latencies(app: App, order_ids: Sequence[int]) -> list[float]:
    """Seconds from each order's submit to its invoice entering FINAL (database clock
    of the writing processes: one machine)."""
    sql = text(
        """SELECT extract(epoch FROM (fin.at - sub.at)) FROM orders o
           JOIN invoices i ON i.order_id = o.id AND i.kind = 'blue'
           JOIN audit_events sub ON sub.instance_id = o.instance_id AND sub.trigger = 'submit'
           JOIN audit_events fin ON fin.instance_id = i.instance_id AND fin.to_state = :final
           WHERE o.id = ANY(:ids)"""
    )
    with app.engine.session_factory() as s:
        return sorted(float(x) for x in s.scalars(sql, {"ids": list(order_ids), "final": FINAL}))


def floor_latencies(app: App, instance_ids: Sequence[int]) -> list[float]:
    sql = text(
        """SELECT extract(epoch FROM (max(at) - min(at))) FROM audit_events
           WHERE instance_id = ANY(:ids) GROUP BY instance_id"""
    )
    with app.engine.session_factory() as s:
        return sorted(float(x) for x in s.scalars(sql, {"ids": list(instance_ids)}))


def wait_all(listener: DoneListener, n: int, stall_s: float, what: str) -> Iterator[int]:
    """Yields the count done so far after each notification; raises after ``stall_s``
    seconds without progress."""
    done, last = 0, time.monotonic()
    while done < n:
        got = listener.wait(1.0)
        if got:
            done, last = done + got, time.monotonic()
            yield done
        elif time.monotonic() - last > stall_s:
            raise RuntimeError(f"{what}: no progress for {stall_s:.0f} s at {done} of {n}")
