"""Crashes: worker processes SIGKILLed in the middle of invoice generation."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from order_flow.services.notify import SENDING, UNCONFIRMED
from order_flow.store.customers import Communication
from order_flow.store.invoices import InvoiceCounter
from order_flow.store.tables import outbox
from tests.e2e.builders import (
    all_done,
    assert_billed_once,
    assert_numbers_gapless,
    invoices,
    mails_by_kind,
    transitions,
    world,
)
from tests.e2e.conftest import Proc, Stack
from tests.integration.order_helpers import order_body

ORDERS = 100
FLOW_TIMEOUT_S = 180.0
#: The relay's REPUBLISH_AFTER in the test where a whole worker dies (10 min in production).
REPUBLISH_AFTER_S = 15.0


def _issue_in_progress(stack: Stack) -> bool:
    """An ``invoice.issue`` job has started (its attempt is counted) and not finished."""
    with stack.app.engine.session_factory() as s:
        return bool(
            s.scalar(
                select(func.count()).where(
                    outbox.c.step == "invoice.issue",
                    outbox.c.status.in_(("pending", "published")),
                    outbox.c.attempts >= 1,
                )
            )
        )


def _issue_reruns(stack: Stack) -> int:
    """``invoice.issue`` jobs that were started more than once."""
    with stack.app.engine.session_factory() as s:
        return int(
            s.scalar(
                select(func.count()).where(outbox.c.step == "invoice.issue", outbox.c.attempts >= 2)
            )
            or 0
        )


def _counter_series(stack: Stack, w: Any) -> list[str]:
    """Create the invoice series the world's customers will use (numbering from 1)."""
    year = datetime.now(ZoneInfo(stack.settings.timezone)).year
    series = sorted({f"{year}-{c.invoice_type}" for c in w.customers})
    with stack.app.engine.session_factory() as s:
        s.add_all(InvoiceCounter(series=name, next_number=1) for name in series)
        s.commit()
    return series


@contextmanager
def _numbering_held(stack: Stack, series: list[str]) -> Iterator[None]:
    """Hold every counter row: an ``invoice.issue`` job that starts now waits inside
    take_number, mid-transaction, until the block ends (so the kill lands mid-step)."""
    with stack.app.db.connect() as blocker:
        blocker.execute(
            select(InvoiceCounter.next_number)
            .where(InvoiceCounter.series.in_(series))
            .with_for_update()
        ).all()
        try:
            yield
        finally:
            blocker.rollback()


def _submit_and_kill(stack: Stack, w: Any, kill: Any, rng: random.Random) -> list[int]:
    """Submit ORDERS orders; once a random number of them are in, kill while an
    invoice.issue job is running (held at the invoice counter, see _numbering_held)."""
    crew = w.people
    series = _counter_series(stack, w)
    drafts = []
    for i in range(ORDERS):
        body = order_body(
            w.customers[i % len(w.customers)].id,
            (w.products[i % len(w.products)].id, "1"),
            customer_po=f"CRASH-{i}",
        )
        drafts.append(stack.app.orders.create(body, crew.alice).id)
    kill_after = rng.randint(ORDERS // 4, ORDERS // 2)
    for n, order_id in enumerate(drafts, start=1):
        stack.app.orders.submit(order_id, crew.alice)
        if n == kill_after:
            with _numbering_held(stack, series):
                stack.wait_for(lambda: _issue_in_progress(stack), 60, "an invoice.issue job")
                kill()
    return drafts


def _kill_pool(worker: Proc) -> None:
    for pid in worker.children():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _mail_log(stack: Stack, marker: str) -> tuple[int, int]:
    """(invoice mails, order notices) whose log entry starts with ``marker``."""
    with stack.app.engine.session_factory() as s:
        rows = list(
            s.scalars(
                select(Communication.invoice_id).where(Communication.summary.startswith(marker))
            )
        )
    on_invoices = sum(1 for invoice_id in rows if invoice_id is not None)
    return on_invoices, len(rows) - on_invoices


def _assert_everything_once(stack: Stack, ids: list[int], smtp_sink: Any) -> None:
    stack.wait_for(lambda: all_done(stack.app, ids), FLOW_TIMEOUT_S, f"{len(ids)} orders")
    stack.wait_for(lambda: _open_jobs(stack) == 0, 30, "the last jobs (mails)")
    issued = invoices(stack.app, ids)
    assert len(issued) == len({(i.order_id, i.part) for i in issued})
    assert_billed_once(stack.app, ids)
    assert_numbers_gapless(stack.app, ids)
    assert transitions(stack.app, "issue") == len(issued)
    # A process killed between a mail's claim and its commit leaves the mail's fate
    # unknown: the retry marks it [未确认] and does not send again (never twice). At
    # most one mail per killed pool process can be in that window.
    assert _mail_log(stack, SENDING) == (0, 0), "a claim left behind"
    on_invoices, on_orders = _mail_log(stack, UNCONFIRMED)
    assert on_invoices + on_orders <= 2
    expected = len(issued) + len(ids) - on_invoices - on_orders
    stack.wait_for(lambda: len(smtp_sink.received) >= expected, 30, "the e-mails")
    with_pdf, others, distinct = mails_by_kind(smtp_sink.received)
    assert len(issued) - on_invoices <= with_pdf <= len(issued)
    assert len(ids) - on_orders <= others <= len(ids)
    assert distinct == len(smtp_sink.received), "a message was sent twice"


def _open_jobs(stack: Stack) -> int:
    with stack.app.engine.session_factory() as s:
        return int(
            s.scalar(select(func.count()).where(outbox.c.status.in_(("pending", "published")))) or 0
        )


def test_pool_processes_killed_mid_invoice_lose_nothing_and_number_once(
    stack: Stack, smtp_sink: Any
) -> None:
    """acks_late + reject_on_worker_lost: the parent requeues the message of the
    killed child at once; no relay timeout is involved (REPUBLISH_AFTER stays 10 min)."""
    rng = random.Random()
    w = world(stack.app)
    worker = stack.start_worker("w1")
    stack.start_relay()

    def kill() -> None:
        # The issue job waits at the held counter: its child dies inside the task.
        _kill_pool(worker)
        stack.wait_for(
            lambda: "WorkerLostError" in worker.output() or _issue_reruns(stack),
            30,
            "the worker to notice its lost child",
        )

    ids = _submit_and_kill(stack, w, kill, rng)
    _assert_everything_once(stack, ids, smtp_sink)
    assert worker.alive(), "the worker's parent survives its children"
    assert "WorkerLostError" in worker.output()


def test_a_worker_killed_outright_is_replaced_and_its_jobs_are_republished(
    stack: Stack, smtp_sink: Any
) -> None:
    """The whole worker (parent and pool) dies: its prefetched, unacked messages wait in
    Redis for the visibility timeout (1 h); the relay re-publishes the jobs after
    REPUBLISH_AFTER, and a new worker runs them."""
    rng = random.Random()
    w = world(stack.app)
    first = stack.start_worker("w1")
    stack.start_relay(republish_after_s=REPUBLISH_AFTER_S)

    ids = _submit_and_kill(stack, w, first.kill, rng)
    assert not first.alive()
    stack.start_worker("w2")
    _assert_everything_once(stack, ids, smtp_sink)
