"""Follow-ups of an approved order: customer notices, backorders, billed meaning issued."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.domain.money import Totals
from order_flow.engine.steps import JobOutcome, drain, run_job
from order_flow.services.notify import enqueue_order_notice_in, order_notice_key
from order_flow.store.customers import Communication
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order
from order_flow.store.tables import outbox
from tests.integration.helpers import state_of
from tests.integration.order_helpers import (
    People,
    customer,
    people,
    product,
    reload,
    state,
    stock,
    submit,
    work,
)

TAX_CODE = "1090101010000000000"


@pytest.fixture
def who(app: App) -> People:
    return people(app)


def with_settings(app: App, **changes: Any) -> None:
    app.settings = dataclasses.replace(app.settings, **changes)


def approved(
    app: App, who: People, qty: str = "10", on_hand: str = "100", price: str = "100", **buyer: Any
) -> Order:
    """An order from a template (no double review), submitted; the order jobs have run."""
    c = customer(app, who.alice, **buyer)
    p = product(app, who.alice, price=price, on_hand=on_hand, tax_code=TAX_CODE)
    template = app.orders.create_template(
        c.id, "常用", [{"product_id": p.id, "qty": qty}], who.alice
    )
    order = app.orders.from_template(template.id, who.alice)
    submit(app, order, who.alice)
    return reload(app, order)


def notices(app: App, order: Order) -> list[Communication]:
    with app.engine.session_factory() as s:
        stmt = select(Communication).where(Communication.order_id == order.id)
        return list(s.scalars(stmt.order_by(Communication.id)))


def mails(app: App) -> list[EmailMessage]:
    """The messages written without a mail server (data_dir/outbox-mail/*.eml)."""
    folder = app.settings.data_dir / "outbox-mail"
    return [
        cast(EmailMessage, message_from_bytes(p.read_bytes(), policy=policy.default))
        for p in sorted(folder.glob("*.eml"))
    ]


def invoices_of(app: App, order: Order) -> list[tuple[Invoice, str]]:
    return [(x.invoice, x.state) for x in reversed(app.invoices.list(order_id=order.id))]


def totals(invoices: list[Invoice]) -> Totals:
    return Totals(
        sum((i.total_net for i in invoices), Decimal("0.00")),
        sum((i.total_tax for i in invoices), Decimal("0.00")),
        sum((i.total_gross for i in invoices), Decimal("0.00")),
    )


def order_totals(order: Order) -> Totals:
    return Totals(order.total_net, order.total_tax, order.total_gross)


def version(app: App, order: Order) -> int:
    return state_of(app, order.instance_id or 0)[1]


def overdue_keys(app: App, order: Order) -> list[str | None]:
    return [
        c.dedupe_key for c in notices(app, order) if ":invoice_overdue:" in (c.dedupe_key or "")
    ]


def advance(app: App, by: timedelta) -> None:
    later: datetime = app.engine.clock() + by
    app.engine.clock = lambda: later


# -- customer notices ---------------------------------------------------------------------


def test_an_approved_order_is_confirmed_to_the_customer_once_and_logged(
    app: App, who: People
) -> None:
    order = approved(app, who, email="buyer@example.com")
    assert state(app, order) == "approved"
    (log,) = notices(app, order)
    key = order_notice_key(order.id, "order_confirmed", version(app, order))
    assert (log.dedupe_key, log.invoice_id) == (key, None)
    assert log.summary.startswith("邮件已发送至 buyer@example.com")
    (msg,) = mails(app)
    assert str(msg["Subject"]) == f"订单已确认：{order.number}"
    with app.engine.uow() as uow:  # the same event queues nothing a second time
        assert enqueue_order_notice_in(app, uow, order, "order_confirmed", key) is None
        uow.commit()
    work(app)
    assert len(notices(app, order)) == 1 and len(mails(app)) == 1


def test_an_order_put_on_hold_asks_the_customer_for_what_is_missing(app: App, who: People) -> None:
    order = approved(app, who, email="buyer@example.com", locale="en", credit_limit="10")
    assert state(app, order) == "on_hold"
    (log,) = notices(app, order)
    assert log.dedupe_key == order_notice_key(order.id, "order_on_hold", version(app, order))
    (msg,) = mails(app)
    assert str(msg["Subject"]) == f"Order on hold: {order.number}"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and "credit limit" in body.get_content()


def test_a_hold_resolved_before_its_notice_went_out_sends_nothing(app: App, who: People) -> None:
    c = customer(app, who.alice, email="buyer@example.com", credit_limit="10")
    p = product(app, who.alice, tax_code=TAX_CODE)
    template = app.orders.create_template(
        c.id, "常用", [{"product_id": p.id, "qty": "1"}], who.alice
    )
    order = app.orders.from_template(template.id, who.alice)
    app.orders.submit(order.id, who.alice)
    with app.engine.session_factory() as s:  # only the checks: the notice stays queued
        (checks,) = s.scalars(select(outbox.c.id).where(outbox.c.step == "order.run_checks"))
    run_job(app, checks)
    app.engine.fire(order.instance_id or 0, "cancel", who.alice, reason="客户撤单")
    work(app)
    assert notices(app, order) == [] and mails(app) == []


def test_customers_without_mail_have_the_skipped_notice_logged(app: App, who: People) -> None:
    order = approved(app, who, email="")
    (log,) = notices(app, order)
    assert log.summary.startswith("未发送（客户没有邮箱地址）")


def test_switched_off_order_notices_queue_nothing(app: App, who: People) -> None:
    with_settings(app, order_notifications=False)
    order = approved(app, who, email="buyer@example.com")
    assert state(app, order) == "approved" and notices(app, order) == []


def test_an_invoice_falling_overdue_is_reminded_once_and_a_paid_one_not_at_all(
    app: App, who: People
) -> None:
    first = approved(app, who, qty="1", email="buyer@example.com")
    second = approved(app, who, qty="1", email="buyer@example.com")
    drain(app)  # issue and mail the invoices
    (blue, _), (paid, _) = invoices_of(app, first)[0], invoices_of(app, second)[0]
    assert blue.due_date is not None
    late = blue.due_date + timedelta(days=1)
    assert app.invoices.refresh_payment_status(late) == 2
    assert app.invoices.refresh_payment_status(late) == 0  # the same day again: no change
    app.invoices.record_payment(paid.id, paid.total_gross, late, who.boss)  # before the mail
    drain(app)
    key = order_notice_key(first.id, "invoice_overdue", blue.id, late.isoformat())
    assert overdue_keys(app, first) == [key]
    assert overdue_keys(app, second) == []
    assert app.invoices.refresh_payment_status(late + timedelta(days=1)) == 0
    drain(app)
    assert overdue_keys(app, first) == [key]
    reminder = next(m for m in mails(app) if "逾期" in str(m["Subject"]))
    body = reminder.get_body(preferencelist=("plain",))
    assert body is not None and blue.display_number in body.get_content()


# -- backorders -----------------------------------------------------------------------------


def test_a_short_approval_reserves_and_invoices_what_is_there_then_the_rest_when_it_arrives(
    app: App, who: People
) -> None:
    order = approved(app, who, qty="10", on_hand="4", price="33.33")
    (line,) = order.lines
    assert state(app, order) == "approved" and line.qty_reserved == Decimal("4")
    ((first, first_state),) = invoices_of(app, order)
    assert first_state == "pending" and first.lines[0].qty == Decimal("4")
    with app.engine.session_factory() as s:
        job = s.execute(select(outbox).where(outbox.c.step == "order.reserve_and_invoice")).one()
    assert job.status == "pending"
    assert job.available_at - app.engine.clock() > timedelta(minutes=29)

    app.catalog.receive(line.product_id, "6", who.alice)
    assert work(app) == 0  # not due yet
    advance(app, timedelta(minutes=31))
    assert work(app) == 1
    order = reload(app, order)
    assert order.lines[0].qty_reserved == order.lines[0].qty_invoiced == Decimal("10")
    assert stock(app, line.product_id) == (Decimal("10"), Decimal("10"))
    invoices = [inv for inv, _ in invoices_of(app, order)]
    assert [inv.lines[0].qty for inv in invoices] == [Decimal("4"), Decimal("6")]
    assert totals(invoices) == order_totals(order)
    with app.engine.session_factory() as s:
        assert s.scalar(select(outbox.c.status).where(outbox.c.id == job.id)) == "done"
    assert len([c for c in notices(app, order) if "已确认" in c.summary]) == 1


def test_a_backordered_order_that_is_closed_stops_retrying(app: App, who: People) -> None:
    order = approved(app, who, qty="10", on_hand="4")
    app.orders.close(order.id, who.alice, "余量不要了")
    advance(app, timedelta(hours=1))
    assert work(app) == 0
    assert state(app, order) == "closed"


# -- billed means issued ------------------------------------------------------------------------


def test_a_delivered_order_completes_only_once_its_invoices_are_issued(
    app: App, who: People
) -> None:
    order = approved(app, who, qty="10")
    app.orders.record_delivery(order.id, {order.lines[0].id: "10"}, who.alice)
    assert state(app, order) == "approved"  # billed on a draft is not billed
    drain(app)
    ((invoice, invoice_state),) = invoices_of(app, order)
    assert invoice.number is not None and invoice_state == "sent"
    assert state(app, order) == "completed"


def test_a_cancelled_draft_gives_its_quantity_back_and_the_order_is_invoiced_again_exactly(
    app: App, who: People
) -> None:
    with_settings(app, invoice_max_net=Decimal("100.00"))
    order = approved(app, who, qty="7", price="33.33")  # net 233.31: pieces of 3, 3, 1
    pieces = invoices_of(app, order)
    assert [inv.lines[0].qty for inv, _ in pieces] == [Decimal(q) for q in ("3", "3", "1")]
    cancelled = pieces[0][0]
    app.engine.fire(cancelled.instance_id or 0, "cancel", who.alice, reason="抬头开错")
    with app.engine.session_factory() as s:
        release = s.execute(
            select(outbox.c.id).where(outbox.c.step == "invoice.release_lines")
        ).scalar_one()
    assert run_job(app, release) == JobOutcome.DONE
    assert run_job(app, release) == JobOutcome.SKIPPED  # a redelivery gives back nothing more
    assert reload(app, order).lines[0].qty_invoiced == Decimal("4")

    (again,) = app.invoices.create_for_order(order.id)
    assert (again.part, again.lines[0].qty) == (4, Decimal("3"))
    live = [inv for inv, st in invoices_of(app, order) if st != "cancelled"]
    assert totals(live) == order_totals(order)
    assert reload(app, order).lines[0].qty_invoiced == Decimal("7")
    assert state_of(app, cancelled.instance_id or 0)[0] == "cancelled"
