"""Migrations 0007 and 0008 fill the engine's copies on orders and invoices (state, first
submission) from the instances and the audit trail, and give old hold tasks their
reason code, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, select

from order_flow.store import migrate
from order_flow.store.customers import Customer
from order_flow.store.db import make_engine
from order_flow.store.invoices import Invoice
from order_flow.store.models import AuditEvent, Instance, Task, WorkflowVersion
from order_flow.store.orders import Order
from tests.conftest import throwaway_pg_database

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def table(model: Any) -> Table:
    return cast(Table, model.__table__)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm7.db'}"
        return
    with throwaway_pg_database("of_m7") as url:
        yield url


def test_0007_copies_the_states_and_reads_old_hold_reasons_from_the_title(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0006")
    # Rows as the code before 0007 wrote them; the new columns do not exist yet, so
    # each insert names its columns (the models' Python defaults fill the rest).
    with engine.begin() as conn:
        version = conn.execute(
            insert(table(WorkflowVersion)).returning(table(WorkflowVersion).c.id),
            dict(name="order", version=1, content_hash="x", source="", path=""),
        ).scalar_one()

        def instance(workflow: str, state: str) -> int:
            t = table(Instance)
            return int(
                conn.execute(
                    insert(t).returning(t.c.id),
                    dict(
                        workflow=workflow,
                        definition_id=version,
                        subject_type=workflow,
                        subject_id="0",
                        state=state,
                        created_by="x",
                        created_at=NOW,
                        updated_at=NOW,
                        entered_at=NOW,
                    ),  # fmt: skip
                ).scalar_one()
            )

        cust = conn.execute(
            insert(table(Customer)).returning(table(Customer).c.id),
            dict(code="C1", name="甲", name_key="c1"),
        ).scalar_one()
        held, done = instance("order", "on_hold"), instance("order", "completed")
        o = table(Order)
        order_ids = [
            conn.execute(
                insert(o).returning(o.c.id),
                dict(
                    number=f"SO-{n}",
                    customer_id=cust,
                    instance_id=i,
                    created_by="x",
                    created_at=NOW,
                ),  # fmt: skip
            ).scalar_one()
            for n, i in ((1, held), (2, done), (3, None))
        ]
        inv = table(Invoice)
        conn.execute(
            insert(inv),
            dict(
                order_id=order_ids[1],
                instance_id=instance("invoice", "sent"),
                invoice_type="ordinary",
                buyer_name="甲",
                total_net=1,
                total_tax=0,
                total_gross=1,
                created_at=NOW,
            ),  # fmt: skip
        )
        t = table(Task)
        for title, state in (
            ("订单 SO-1 需处理: STOCK_SHORT", "on_hold"),
            ("订单 SO-1 需处理: ", "on_hold"),  # a rejection in review: no code
            ("订单 SO-2 待复核", "review"),
        ):
            conn.execute(
                insert(t),
                dict(instance_id=held, state=state, title=title, created_at=NOW),
            )

    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(select(o.c.number, o.c.state).order_by(o.c.id)).all() == [
            ("SO-1", "on_hold"),
            ("SO-2", "completed"),
            ("SO-3", None),  # no instance yet
        ]
        assert conn.execute(select(inv.c.state)).scalars().all() == ["sent"]
        assert conn.execute(select(t.c.title, t.c.data).order_by(t.c.id)).all() == [
            ("订单 SO-1 需处理: STOCK_SHORT", {"hold_reason": "STOCK_SHORT"}),
            ("订单 SO-1 需处理: ", None),
            ("订单 SO-2 待复核", None),
        ]
    assert migrate.pending_differences(engine) == []
    engine.dispose()


def test_0008_takes_the_first_submission_from_the_audit_trail(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0007")
    with engine.begin() as conn:
        version = conn.execute(
            insert(table(WorkflowVersion)).returning(table(WorkflowVersion).c.id),
            dict(name="order", version=1, content_hash="x", source="", path=""),
        ).scalar_one()
        i = table(Instance)
        iid = conn.execute(
            insert(i).returning(i.c.id),
            dict(
                workflow="order",
                definition_id=version,
                subject_type="order",
                subject_id="0",
                state="approved",
                created_by="x",
                created_at=NOW,
                updated_at=NOW,
                entered_at=NOW,
            ),  # fmt: skip
        ).scalar_one()
        cust = conn.execute(
            insert(table(Customer)).returning(table(Customer).c.id),
            dict(code="C1", name="甲", name_key="c1"),
        ).scalar_one()
        o = table(Order)
        for n, inst in ((1, iid), (2, None)):
            conn.execute(
                insert(o),
                dict(
                    number=f"SO-{n}",
                    customer_id=cust,
                    instance_id=inst,
                    created_by="x",
                    created_at=NOW,
                ),  # fmt: skip
            )
        a = table(AuditEvent)
        for hours, to in ((1, "submitted"), (2, "on_hold"), (3, "submitted"), (4, "approved")):
            conn.execute(
                insert(a),
                dict(
                    instance_id=iid,
                    kind="transition",
                    to_state=to,
                    actor="x",
                    at=NOW + timedelta(hours=hours),
                ),  # fmt: skip
            )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(select(o.c.number, o.c.submitted_at).order_by(o.c.id)).all() == [
            ("SO-1", NOW + timedelta(hours=1)),  # the first of two submissions
            ("SO-2", None),
        ]
    assert migrate.pending_differences(engine) == []
    engine.dispose()
