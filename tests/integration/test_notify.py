"""Customer mail: the invoice with its PDF over real SMTP, at most once per job, logged."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.config import Settings
from order_flow.domain.enums import RedReason
from order_flow.engine.steps import JobOutcome, StepContext, drain, run_job
from order_flow.errors import NotFoundError, ValidationError
from order_flow.services import notify
from order_flow.services.notify import NotificationService, Outcome
from order_flow.store.customers import Communication
from order_flow.store.invoices import Invoice
from order_flow.store.tables import outbox
from tests.conftest import WORKFLOWS
from tests.integration.helpers import state_of
from tests.integration.order_helpers import (
    People,
    customer,
    order_body,
    people,
    product,
    submit,
)
from tests.integration.test_pdf import issue_invoice


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(cast(EmailMessage, msg))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, inbox: tuple[Inbox, int]) -> Settings:
    """conftest's settings, sending to the test SMTP server, no automatic order notices."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        workflows_dir=WORKFLOWS,
        smtp_url=f"smtp://127.0.0.1:{inbox[1]}",
        mail_from="示例贸易 <invoices@seller.example>",
        # These tests send the order notices by hand; the automatic ones are
        # tested in test_order_followups.py.
        order_notifications=False,
    )


@pytest.fixture
def mails(inbox: tuple[Inbox, int]) -> list[EmailMessage]:
    return inbox[0].messages


@pytest.fixture
def who(app: App) -> People:
    return people(app)


def with_settings(app: App, **changes: Any) -> None:
    app.settings = dataclasses.replace(app.settings, **changes)


def invoice_state(app: App, invoice: Invoice) -> str:
    return state_of(app, invoice.instance_id or 0)[0]


def communications(app: App) -> list[Communication]:
    with app.engine.session_factory() as s:
        return list(s.scalars(select(Communication).order_by(Communication.id)))


def notify_job(app: App) -> Any:
    with app.engine.session_factory() as s:
        return s.execute(select(outbox).where(outbox.c.step == "invoice.notify")).one()


def pdf_attachments(msg: EmailMessage) -> list[tuple[str | None, bytes]]:
    return [
        (part.get_filename(), cast(bytes, part.get_content()))
        for part in msg.iter_attachments()
        if part.get_content_type() == "application/pdf"
    ]


@pytest.mark.parametrize(
    ("locale", "subject", "greeting"),
    [("zh_CN", "发票已开具", "您好"), ("en", "Invoice issued", "Dear")],
)
def test_an_issued_invoice_is_mailed_with_its_pdf_in_the_customers_language(
    app: App, who: People, mails: list[EmailMessage], locale: str, subject: str, greeting: str
) -> None:
    invoice = issue_invoice(app, who, locale=locale)
    assert invoice_state(app, invoice) == "sent"
    (msg,) = mails
    assert subject in str(msg["Subject"]) and invoice.display_number in str(msg["Subject"])
    assert msg["To"].addresses[0].addr_spec == "buyer@example.com"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert greeting in text and invoice.display_number in text and "1130.00" in text
    stored = Path(str(invoice.pdf_path)).read_bytes()
    assert pdf_attachments(msg) == [(f"{invoice.display_number}.pdf", stored)]
    job = notify_job(app)
    assert msg["Message-ID"] == notify.message_id(job.idempotency_key, app.settings.mail_from)
    (log,) = communications(app)
    assert (log.channel, log.direction, log.invoice_id, log.order_id) == (
        "email", "out", invoice.id, invoice.order_id,
    )  # fmt: skip
    assert log.dedupe_key == job.idempotency_key
    assert log.summary.startswith("邮件已发送至 buyer@example.com")


@pytest.mark.parametrize(
    ("locale", "attached", "without"),
    [("zh_CN", "发票 PDF 见附件", "如有疑问"), ("en", "attached as a PDF", "anything is unclear")],
)
def test_with_invoice_pdf_off_invoices_are_numbered_and_mailed_without_a_pdf(
    app: App,
    who: People,
    mails: list[EmailMessage],
    locale: str,
    attached: str,
    without: str,
) -> None:
    with_settings(app, invoice_pdf=False)
    invoice = issue_invoice(app, who, locale=locale)
    assert invoice_state(app, invoice) == "sent"
    assert invoice.number == 1 and invoice.total_gross == Decimal("1130.00")
    assert (invoice.pdf_path, invoice.pdf_sha256) == (None, None)
    assert not (app.settings.data_dir / "invoices").exists()
    (msg,) = mails
    assert invoice.display_number in str(msg["Subject"])
    assert pdf_attachments(msg) == []
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "1130.00" in text and without in text and attached not in text
    app.invoices.request_red(invoice.id, who.boss, RedReason.GOODS_RETURNED, "113.00", "退一台")
    red = app.invoices.approve_red(invoice.id, who.boss, "同意")
    assert red.number == 2 and red.total_gross == Decimal("-113.00")
    assert (red.pdf_path, red.pdf_sha256) == (None, None)
    assert not (app.settings.data_dir / "invoices").exists()


def test_a_redelivered_notify_job_sends_nothing_more(
    app: App, who: People, mails: list[EmailMessage]
) -> None:
    issue_invoice(app, who)
    assert run_job(app, notify_job(app).id) == JobOutcome.SKIPPED
    assert len(mails) == 1 and len(communications(app)) == 1


def test_a_worker_dying_after_sending_does_not_send_again_when_the_job_is_redelivered(
    app: App, who: People, mails: list[EmailMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fire = StepContext.fire

    def dies_before_commit(self: StepContext, trigger: str, **kwargs: Any) -> Any:
        if self.step == "invoice.notify":
            raise RuntimeError("worker killed after the mail left")
        return real_fire(self, trigger, **kwargs)

    monkeypatch.setattr(StepContext, "fire", dies_before_commit)
    with pytest.raises(RuntimeError):
        issue_invoice(app, who)
    (claim,) = communications(app)
    assert claim.summary.startswith(notify.SENDING)
    assert len(mails) == 1
    monkeypatch.setattr(StepContext, "fire", real_fire)
    drain(app)  # the redelivery
    with app.engine.session_factory() as s:
        invoice = s.scalars(select(Invoice)).one()
    assert invoice_state(app, invoice) == "sent"
    assert len(mails) == 1
    (log,) = communications(app)
    assert log.summary.startswith(notify.UNCONFIRMED) and "未重发" in log.summary


def test_a_send_that_fails_releases_its_claim_so_the_retry_sends(
    app: App, who: People, mails: list[EmailMessage]
) -> None:
    good = app.settings.smtp_url
    with_settings(app, smtp_url=f"smtp://127.0.0.1:{free_port()}")  # nobody listens
    with pytest.raises(OSError):
        issue_invoice(app, who)
    assert communications(app) == [] and mails == []
    with_settings(app, smtp_url=good)
    drain(app)
    (log,) = communications(app)
    assert len(mails) == 1 and log.summary.startswith("邮件已发送至")


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"notify_by_email": False}, "客户不接收邮件通知"),
        ({"email": ""}, "客户没有邮箱地址"),
    ],
)
def test_customers_without_mail_are_logged_as_skipped_and_still_reach_sent(
    app: App, who: People, mails: list[EmailMessage], fields: dict[str, Any], why: str
) -> None:
    invoice = issue_invoice(app, who, **fields)
    assert invoice_state(app, invoice) == "sent"
    assert mails == []
    (log,) = communications(app)
    assert log.summary.startswith(f"未发送（{why}）") and log.invoice_id == invoice.id


def test_without_a_mail_server_the_message_is_written_as_an_eml_file(
    app: App, who: People, mails: list[EmailMessage]
) -> None:
    with_settings(app, smtp_url="")
    invoice = issue_invoice(app, who)
    (path,) = (app.settings.data_dir / "outbox-mail").glob("*.eml")
    msg = cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=policy.default))
    assert invoice.display_number in str(msg["Subject"])
    assert [name for name, _ in pdf_attachments(msg)] == [f"{invoice.display_number}.pdf"]
    assert mails == [] and invoice_state(app, invoice) == "sent"


def notify_order(app: App, order_id: int, kind: str, key: str, **kw: Any) -> Outcome:
    with app.engine.uow() as uow:
        outcome = NotificationService(app).notify_order_in(uow, order_id, kind, key, **kw)
        uow.commit()
    return outcome


def test_an_order_on_hold_asks_the_customer_for_what_is_missing_once_per_key(
    app: App, who: People, mails: list[EmailMessage]
) -> None:
    buyer = customer(app, who.alice, email="buyer@example.com", locale="en", credit_limit="10")
    item = product(app, who.alice, price="100", tax_code="1090101010000000000")
    template = app.orders.create_template(
        buyer.id, "usual", [{"product_id": item.id, "qty": "1"}], who.alice
    )
    order = app.orders.from_template(template.id, who.alice)
    assert submit(app, order, who.alice) == "on_hold"
    assert notify_order(app, order.id, "order_on_hold", "hold-1") == Outcome.SENT
    assert notify_order(app, order.id, "order_on_hold", "hold-1") == Outcome.DUPLICATE
    (msg,) = mails
    assert str(msg["Subject"]) == f"Order on hold: {order.number}"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and "credit limit" in body.get_content()
    (log,) = communications(app)
    assert (log.order_id, log.invoice_id, log.dedupe_key) == (order.id, None, "hold-1")


def test_an_approved_order_is_confirmed_in_chinese(
    app: App, who: People, mails: list[EmailMessage]
) -> None:
    with_settings(app, double_review_without_template=False)
    buyer = customer(app, who.alice, email="buyer@example.com")
    item = product(app, who.alice, price="100", tax_code="1090101010000000000")
    order = app.orders.create(order_body(buyer.id, (item.id, "2")), who.alice)
    assert submit(app, order, who.alice) == "approved"
    assert notify_order(app, order.id, "order_confirmed", f"confirmed-{order.id}") == Outcome.SENT
    (msg,) = mails
    assert str(msg["Subject"]) == f"订单已确认：{order.number}"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and "226.00" in body.get_content()


def test_an_overdue_invoice_reminder_names_the_invoice_and_what_is_outstanding(
    app: App, who: People, mails: list[EmailMessage]
) -> None:
    invoice = issue_invoice(app, who)
    app.invoices.record_payment(invoice.id, "130.00", invoice.issued_at.date(), who.boss)  # type: ignore[union-attr]
    assert invoice.due_date is not None
    app.invoices.refresh_payment_status(invoice.due_date + timedelta(days=1))
    assert notify_order(app, invoice.order_id, "invoice_overdue", "overdue-1") == Outcome.SENT
    (_, reminder) = mails
    body = reminder.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert invoice.display_number in text and "未付 ¥1000.00" in text


def test_an_unknown_kind_or_order_is_refused(app: App) -> None:
    with pytest.raises(ValidationError) as bad:
        notify_order(app, 1, "birthday", "k")
    assert "kind" in bad.value.errors
    with pytest.raises(NotFoundError):
        notify_order(app, 999, "order_confirmed", "k")
