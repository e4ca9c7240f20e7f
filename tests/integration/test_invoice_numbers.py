"""Gapless invoice numbers under concurrency: 50 racing issues, some failing after numbering."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.core import FireResult
from order_flow.engine.steps import StepContext, run_job
from order_flow.store.invoices import Invoice, InvoiceCounter
from order_flow.store.tables import outbox
from tests.integration.test_invoicing import (
    add_order,
    create_invoices,
    invoice_state,
    local_today,
    run_invoice_steps,
    with_settings,
)

INVOICES = 50


class SimulatedCrash(RuntimeError):
    """Raised after the number was taken, before the transaction commits."""


def issue_jobs(app: App) -> list[int]:
    with app.engine.session_factory() as s:
        return list(
            s.scalars(
                select(outbox.c.id).where(
                    outbox.c.step == "invoice.issue", outbox.c.status == "pending"
                )
            )
        )


def crash_after_numbering(failing: set[int], numbered: list[int]) -> Callable[..., FireResult]:
    """A StepContext.fire that raises for the chosen invoices once they hold a number."""
    original = StepContext.fire

    def fire(self: StepContext, trigger: str, **kwargs: Any) -> FireResult:
        invoice_id = int(self.instance.subject_id)
        if self.step == "invoice.issue" and trigger == "issue" and invoice_id in failing:
            number = self.uow.session.get_one(Invoice, invoice_id).number
            assert number is not None  # taken inside this very transaction
            numbered.append(number)
            raise SimulatedCrash(f"invoice {invoice_id} crashed holding number {number}")
        return original(self, trigger, **kwargs)

    return fire


def numbers(app: App, ids: list[int]) -> dict[int, int | None]:
    with app.engine.session_factory() as s:
        rows = s.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(ids)))
        return {invoice_id: number for invoice_id, number in rows}


def test_fifty_concurrent_issues_with_some_crashing_leave_no_gap_in_the_numbers(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_settings(app, invoice_max_lines=1)
    ids = create_invoices(app, add_order(app, [("1", "10")] * INVOICES))
    assert len(ids) == INVOICES
    run_invoice_steps(app, ("invoice.prepare",))
    jobs = issue_jobs(app)
    assert len(jobs) == INVOICES

    failing = set(ids[::10])  # 10 %
    taken_then_lost: list[int] = []
    monkeypatch.setattr(StepContext, "fire", crash_after_numbering(failing, taken_then_lost))
    barrier = threading.Barrier(INVOICES)
    unexpected: list[BaseException] = []

    def issue(job_id: int) -> None:
        barrier.wait()
        try:
            run_job(app, job_id)
        except SimulatedCrash:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            unexpected.append(exc)

    with ThreadPoolExecutor(max_workers=INVOICES) as pool:
        list(pool.map(issue, jobs))
    assert unexpected == []
    assert len(taken_then_lost) == len(failing)

    succeeded = INVOICES - len(failing)
    after_race = numbers(app, ids)
    assert sorted(n for n in after_race.values() if n is not None) == list(range(1, succeeded + 1))
    assert {i for i, n in after_race.items() if n is None} == failing
    assert all(invoice_state(app, i) == "issuing" for i in failing)
    series = f"{local_today(app).year}-ordinary"
    with app.engine.session_factory() as s:
        assert s.get_one(InvoiceCounter, series).next_number == succeeded + 1

    monkeypatch.undo()
    run_invoice_steps(app, ("invoice.issue",))
    final = numbers(app, ids)
    assert sorted(n for n in final.values() if n is not None) == list(range(1, INVOICES + 1))
    assert sorted(final[i] or 0 for i in failing) == list(range(succeeded + 1, INVOICES + 1))
    assert all(invoice_state(app, i) == "issued" for i in ids)
