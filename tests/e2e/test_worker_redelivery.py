"""Redelivery: a step outlasting the visibility timeout runs its side effect once."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from order_flow.store.invoices import InvoiceCounter
from order_flow.store.tables import outbox
from tests.e2e.builders import all_done, invoices, place_orders, transitions, world
from tests.e2e.conftest import Stack
from tests.e2e.launch import RESTORE_EVERY, VISIBILITY_TIMEOUT

#: Seconds; worker.app.VISIBILITY_TIMEOUT_S is 3600 in production.
SHORT_VISIBILITY_S = 2
_RECEIVED = re.compile(r"Task order_flow\.run_step\[([0-9a-f-]+)\] received")


def _redelivered(log: str) -> list[str]:
    """Task ids the worker received more than once."""
    return [tid for tid, n in Counter(_RECEIVED.findall(log)).items() if n > 1]


def _issue_started(stack: Stack) -> bool:
    with stack.app.engine.session_factory() as s:
        return bool(
            s.scalar(
                select(func.count()).where(
                    outbox.c.step == "invoice.issue",
                    outbox.c.status == "published",
                    outbox.c.attempts >= 1,
                )
            )
        )


def test_a_step_outlasting_the_visibility_timeout_numbers_its_invoice_once(stack: Stack) -> None:
    w = world(stack.app, customers=1, products=1)
    worker = stack.start_worker(
        "w1", overrides={VISIBILITY_TIMEOUT: str(SHORT_VISIBILITY_S), RESTORE_EVERY: "1"}
    )
    stack.start_relay()
    tz = ZoneInfo(stack.settings.timezone)
    series = f"{datetime.now(tz).year}-{w.customers[0].invoice_type}"
    with stack.app.engine.session_factory() as s:
        s.add(InvoiceCounter(series=series, next_number=1))
        s.commit()

    # Hold the counter row: invoice.issue blocks inside take_number, past the timeout.
    with stack.app.db.connect() as blocker:
        blocker.execute(
            text("SELECT next_number FROM invoice_counters WHERE series = :s FOR UPDATE"),
            {"s": series},
        )
        ids = place_orders(stack.app, w, 1)
        stack.wait_for(lambda: _issue_started(stack), 60, "invoice.issue to start")
        # Redis puts the unacknowledged message back; the worker takes it a second time.
        stack.wait_for(lambda: _redelivered(worker.output()), 60, "a redelivery")
        blocker.rollback()

    stack.wait_for(lambda: all_done(stack.app, ids), 60, "the order")
    [invoice] = invoices(stack.app, ids)
    assert (invoice.series, invoice.number) == (series, 1)
    assert transitions(stack.app, "issue") == 1
    with stack.app.engine.session_factory() as s:
        assert s.scalar(select(InvoiceCounter.next_number)) == 2
        job = s.execute(select(outbox).where(outbox.c.step == "invoice.issue")).one()
    assert job.status == "done"
    assert job.attempts == 1, "the second delivery found the job finished and skipped it"
