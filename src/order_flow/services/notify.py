"""Customer notifications by e-mail, logged in the communication log, sent at most once.

Every message carries a dedupe key (for a step: its job's idempotency key). Before
anything is sent, a communication row with that key is committed, its summary
marked ``[发送中]``; the send follows, then the caller's transaction rewrites the
summary. A key that already has a row is never sent again. The trade-off is
at-most-once: a worker that dies after the server accepted the message but before
its commit leaves a ``[发送中]`` row, and the redelivery marks it ``[未确认]``
instead of sending a second copy; a send that raises (server down, refused)
deletes the claim, so the retry sends. The Message-ID is derived from the key, so
even a duplicate that slips through (a connection lost after DATA) is recognisable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import ssl
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Table, delete, func, select, update

from order_flow.config import Settings
from order_flow.domain.capitals import amount_in_capitals
from order_flow.domain.enums import InvoiceType, PaymentStatus
from order_flow.domain.money import round_money
from order_flow.engine.actors import SYSTEM
from order_flow.engine.registry import Guard, Step
from order_flow.engine.steps import StepContext
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import NotFoundError, ValidationError
from order_flow.services import pdf
from order_flow.store.customers import Communication, Customer
from order_flow.store.db import insert_ignoring
from order_flow.store.invoices import Invoice, Payment
from order_flow.store.orders import Order
from order_flow.store.tables import outbox

if TYPE_CHECKING:
    from order_flow.bootstrap import App

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates" / "mail"
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
#: Order-level notifications; "invoice_issued" is sent by the invoice.notify step.
KINDS = ("order_confirmed", "order_on_hold", "invoice_overdue", "invoice_issued")
SENDING = "[发送中]"
UNCONFIRMED = "[未确认]"
SMTP_TIMEOUT_S = 30
_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class Outcome(StrEnum):
    SENT = "sent"
    #: Not sent: the customer takes no e-mail or has no address (logged as such).
    SKIPPED = "skipped"
    #: The key was claimed before (a redelivery): nothing sent this time.
    DUPLICATE = "duplicate"


# -- templates and messages ----------------------------------------------------------


@lru_cache(maxsize=1)
def _jinja() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,  # plain-text mail
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_mail(kind: str, locale: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) from templates/mail/<locale>/<kind>.txt; the first line is the subject."""
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    text = _jinja().get_template(f"{locale}/{kind}.txt").render(**context)
    subject, _, body = text.partition("\n")
    return " ".join(subject.split()), body.lstrip("\n")


def message_id(dedupe_key: str, mail_from: str) -> str:
    """The same key always gives the same Message-ID."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "order-flow.invalid"
    return f"<{hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]}@{domain}>"


def build_message(
    settings: Settings,
    to: tuple[str, str],
    subject: str,
    body: str,
    dedupe_key: str,
    when: datetime,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = formataddr(to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id(dedupe_key, settings.mail_from)
    msg.set_content(body)
    for filename, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return msg


# -- transports ------------------------------------------------------------------------


class Transport(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


class SmtpTransport:
    """smtp://[user:pass@]host[:port]; smtp+starttls:// upgrades; smtps:// is TLS at once."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"smtp_url {url!r}: use smtp://, smtp+starttls:// or smtps://host")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password or "")

    def send(self, msg: EmailMessage) -> None:
        smtp: smtplib.SMTP
        if self.scheme == "smtps":
            context = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_S, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_S)
        with smtp:
            if self.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(msg)


class FileTransport:
    """No mail server (quick start): each message becomes <folder>/<message-id hash>.eml."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, msg: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(msg["Message-ID"]).encode()).hexdigest()[:40] + ".eml"
        fd, tmp = tempfile.mkstemp(prefix=".mail.", dir=self.folder)
        with os.fdopen(fd, "wb") as f:
            f.write(msg.as_bytes())
        os.replace(tmp, self.folder / name)
        log.info("mail to %s written to %s (no smtp_url)", msg["To"], self.folder / name)


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return FileTransport(settings.data_dir / "outbox-mail")


# -- the service --------------------------------------------------------------------------


def _fmt(value: Decimal | date | None) -> str:
    """Amounts with 2 places, dates ISO, nothing as ''."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else f"{value:.2f}"


def _sum(value: Any) -> Decimal:
    """A database sum as Decimal (SQLite may hand back a float)."""
    return round_money(str(value)) if value is not None else Decimal("0.00")


class Claim(NamedTuple):
    """A mail's ``[发送中]`` log row, committed before the send."""

    id: int
    summary: str


class NotificationService:
    def __init__(self, app: App) -> None:
        self.app = app

    def notify_invoice_in(self, uow: UnitOfWork, invoice_id: int, dedupe_key: str) -> Outcome:
        """Mail "发票已开具 / Invoice issued" with the PDF attached, logged with the invoice."""
        s = uow.session
        invoice = s.get(Invoice, invoice_id)
        if invoice is None:
            raise NotFoundError(f"invoice {invoice_id} does not exist")
        order = s.get_one(Order, invoice.order_id)
        customer = s.get_one(Customer, order.customer_id)
        settings = self.app.settings
        issued_on = None
        if invoice.issued_at is not None:
            issued_on = invoice.issued_at.astimezone(ZoneInfo(settings.timezone)).date()
        special = invoice.invoice_type == InvoiceType.SPECIAL
        context = self._common(order, customer) | {
            "invoice_number": invoice.display_number,
            "invoice_type_zh": "增值税专用发票" if special else "增值税普通发票",
            "invoice_type_en": "special" if special else "ordinary",
            "issued_on": _fmt(issued_on),
            "due_date": _fmt(invoice.due_date),
            "total_gross": _fmt(invoice.total_gross),
            "total_capitals": amount_in_capitals(invoice.total_gross),
            # settings.invoice_pdf off: no PDF was made, so none is attached
            "pdf_attached": bool(settings.invoice_pdf or invoice.pdf_path),
        }

        def attach() -> list[tuple[str, bytes]]:
            if not context["pdf_attached"]:
                return []
            return [(f"{invoice.display_number}.pdf", pdf.pdf_of(s, invoice, self.app))]

        return self._deliver(
            uow, customer, order, "invoice_issued", context, dedupe_key, invoice.id, attach
        )

    def notify_order_in(
        self, uow: UnitOfWork, order_id: int, kind: str, dedupe_key: str,
        invoice_id: int | None = None,
    ) -> Outcome:  # fmt: skip
        """Order confirmed, on hold (by hold_reason) or invoices overdue (``invoice_id``, or
        every overdue blue invoice of the order); ``invoice_issued`` needs ``invoice_id``.

        Call it before the caller writes anything it wants rolled back with a failed send:
        on SQLite the claim commits the caller's unit of work so far (see :meth:`_claim`).
        """
        if kind not in KINDS:
            raise ValidationError({"kind": f"must be one of {', '.join(KINDS)}"})
        if kind == "invoice_issued":
            if invoice_id is None:
                raise ValidationError({"invoice_id": "required for invoice_issued"})
            return self.notify_invoice_in(uow, invoice_id, dedupe_key)
        s = uow.session
        order = s.get(Order, order_id)
        if order is None:
            raise NotFoundError(f"order {order_id} does not exist")
        customer = s.get_one(Customer, order.customer_id)
        context = self._common(order, customer) | {
            "line_count": len(order.lines),
            "total_gross": _fmt(order.total_gross),
            "promised_date": _fmt(order.promised_date),
            "hold_reason": order.hold_reason or "",
            "hold_detail": order.hold_detail or "",
        }
        if kind == "invoice_overdue":
            context["invoices"] = self._overdue(uow, order, invoice_id)
            if not context["invoices"]:
                raise ValidationError({"invoice_id": "no overdue invoice to remind of"})
        return self._deliver(uow, customer, order, kind, context, dedupe_key, invoice_id, None)

    # -- internals --------------------------------------------------------------------

    def _common(self, order: Order, customer: Customer) -> dict[str, Any]:
        return {
            "customer_name": customer.name,
            "seller_name": self.app.settings.seller_name,
            "order_number": order.number,
        }

    @staticmethod
    def _overdue(uow: UnitOfWork, order: Order, invoice_id: int | None) -> list[dict[str, str]]:
        s = uow.session
        stmt = select(Invoice).where(Invoice.order_id == order.id, Invoice.kind == "blue")
        if invoice_id is not None:
            stmt = stmt.where(Invoice.id == invoice_id)
        else:
            stmt = stmt.where(Invoice.payment_status == PaymentStatus.OVERDUE.value)
        out = []
        for inv in s.scalars(stmt.order_by(Invoice.id)):
            paid = s.scalar(select(func.sum(Payment.amount)).where(Payment.invoice_id == inv.id))
            red = s.scalar(
                select(func.sum(Invoice.total_gross)).where(Invoice.original_id == inv.id)
            )
            owed = inv.total_gross - _sum(paid) + _sum(red)  # red totals are negative
            out.append(
                {
                    "number": inv.display_number,
                    "total_gross": _fmt(inv.total_gross),
                    "outstanding": _fmt(owed),
                    "due_date": _fmt(inv.due_date),
                }
            )
        return out

    def _deliver(
        self,
        uow: UnitOfWork,
        customer: Customer,
        order: Order,
        kind: str,
        context: Mapping[str, Any],
        dedupe_key: str,
        invoice_id: int | None,
        attachments: Callable[[], list[tuple[str, bytes]]] | None,
    ) -> Outcome:
        s = uow.session
        subject, body = render_mail(kind, customer.locale, context)
        seen = s.scalar(select(Communication).where(Communication.dedupe_key == dedupe_key))
        if seen is not None:
            if seen.summary.startswith(SENDING):  # died after sending, before its commit
                what = seen.summary[len(SENDING) :].rsplit(" #", 1)[0].strip()
                seen.summary = f"{UNCONFIRMED} {what}（发送结果未确认，未重发）"
            return Outcome.DUPLICATE
        email = customer.email.strip()
        if not customer.notify_by_email or not email:
            why = "客户不接收邮件通知" if not customer.notify_by_email else "客户没有邮箱地址"
            self.app.customers.log_contact_in(
                uow, customer.id, "email", "out", f"未发送（{why}）: {subject}", SYSTEM,
                order.id, invoice_id, dedupe_key,
            )  # fmt: skip
            return Outcome.SKIPPED
        msg = build_message(  # before the claim: a failure here must not block the retry
            self.app.settings, (customer.name, email), subject, body, dedupe_key,
            self.app.engine.clock(), attachments() if attachments else (),
        )  # fmt: skip
        claim = self._claim(
            uow, customer, order, invoice_id, f"邮件发送至 {email}: {subject}", dedupe_key
        )
        if claim is None:
            return Outcome.DUPLICATE
        try:
            transport_for(self.app.settings).send(msg)
        except Exception:
            self._release(uow, claim)
            raise
        s.execute(
            update(Communication)
            .where(Communication.id == claim.id)
            .values(summary=f"邮件已发送至 {email}: {subject}")
        )
        return Outcome.SENT

    def _claim(
        self,
        uow: UnitOfWork,
        customer: Customer,
        order: Order,
        invoice_id: int | None,
        summary: str,
        key: str,
    ) -> Claim | None:
        """Commit the ``[发送中]`` row for ``key``; None when
        another sender holds the key (one ``INSERT ... ON CONFLICT DO NOTHING``).

        The row is the system's own record of what it is about to send: the customer,
        order and invoice come from the step's loaded rows, so the checks of
        ``CustomerService.log_contact_in`` (a clerk's input) are not repeated.

        On a server database the claim is its own transaction. SQLite has one writer,
        and the caller's transaction holds the lock, so there the caller's unit of
        work is committed with the claim instead (a step calls this before writing).
        """
        marked = f"{SENDING} {summary} #{uuid.uuid4().hex[:8]}"
        row = {
            "customer_id": customer.id, "order_id": order.id, "invoice_id": invoice_id,
            "channel": "email", "direction": "out", "summary": marked, "actor": SYSTEM.name,
            "dedupe_key": key, "at": self.app.engine.clock(),
        }  # fmt: skip
        table = cast(Table, Communication.__table__)
        claim = insert_ignoring(uow.session, table, row, [table.c.dedupe_key]).returning(table.c.id)
        if _is_sqlite(uow):
            claimed = uow.session.execute(claim).scalar()
            uow.commit()
        else:
            with self.app.engine.uow() as own:
                claimed = own.session.execute(claim).scalar()
                own.commit()
        return Claim(int(claimed), marked) if claimed is not None else None

    def _release(self, uow: UnitOfWork, claim: Claim) -> None:
        """The send failed: drop the claim, so the retry may send."""
        gone = delete(Communication).where(
            Communication.id == claim.id, Communication.summary == claim.summary
        )
        if _is_sqlite(uow):
            uow.session.rollback()  # whatever the caller wrote after the claim
            uow.session.execute(gone)
            uow.commit()
            return
        with self.app.engine.uow() as own:
            own.session.execute(gone)
            own.commit()


def _is_sqlite(uow: UnitOfWork) -> bool:
    return uow.session.get_bind().dialect.name == "sqlite"


# -- the step ------------------------------------------------------------------------------


def job_key(ctx: StepContext) -> str:
    """The job's idempotency key: the same for every delivery of the job."""
    if ctx.key:
        return ctx.key
    key = ctx.uow.session.scalar(select(outbox.c.idempotency_key).where(outbox.c.id == ctx.job_id))
    return str(key)


def notify_step(ctx: StepContext) -> None:
    """Mail the issued invoice to the customer (or log why not), then fire ``sent``."""
    NotificationService(ctx.app).notify_invoice_in(
        ctx.uow, int(ctx.instance.subject_id), job_key(ctx)
    )
    if ctx.app.engine.load(ctx.uow.session, ctx.instance.id).state != ctx.instance.state:
        return  # SQLite: a concurrent delivery finished the job after our claim committed
    ctx.fire("sent")


# -- order notices: side jobs on the order's instance ------------------------------------

#: The step that mails an order notice; bound to no state, queued by enqueue_order_notice_in.
ORDER_STEP = "notify.order"
ORDER_KINDS = ("order_confirmed", "order_on_hold", "invoice_overdue")


def order_notice_key(order_id: int, kind: str, *event: object) -> str:
    """``notify:<order>:<kind>:<event...>``, e.g. the instance version that entered the state."""
    return ":".join(("notify", str(order_id), kind, *(str(e) for e in event)))


def enqueue_order_notice_in(
    app: App,
    uow: UnitOfWork,
    order: Order,
    kind: str,
    key: str,
    invoice_id: int | None = None,
) -> int | None:
    """Queue a ``notify.order`` job in the caller's unit of work, so the mail goes out only
    if that work commits, from the email queue, once per ``key`` (also the dedupe key).

    Returns the job id; None when notices are switched off, the order runs no workflow,
    or ``key`` was queued before. The job is dropped if the order leaves its current
    state before it ran (a hold resolved, a confirmed order cancelled).
    """
    if kind not in ORDER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ORDER_KINDS)}")
    if not app.settings.order_notifications or order.instance_id is None:
        return None
    payload: dict[str, Any] = {"order_id": order.id, "kind": kind}
    if invoice_id is not None:
        payload["invoice_id"] = invoice_id
    return app.engine.enqueue_in(uow, order.instance_id, ORDER_STEP, payload, key)


def notify_order_step(ctx: StepContext) -> None:
    """Mail the queued order notice (or log why not); a paid reminder is dropped."""
    kind = str(ctx.payload["kind"])
    order_id = int(ctx.payload.get("order_id") or ctx.instance.subject_id)
    raw_invoice = ctx.payload.get("invoice_id")
    invoice_id = int(raw_invoice) if raw_invoice is not None else None
    if kind == "invoice_overdue" and invoice_id is not None:
        status = ctx.uow.session.scalar(
            select(Invoice.payment_status).where(Invoice.id == invoice_id)
        )
        if status != PaymentStatus.OVERDUE.value:
            log.info("invoice %s is no longer overdue (%s): no reminder", invoice_id, status)
            return
    NotificationService(ctx.app).notify_order_in(
        ctx.uow, order_id, kind, job_key(ctx), invoice_id=invoice_id
    )


#: Guards this module provides, by the name the workflow files use.
GUARDS: dict[str, Guard] = {}
#: Step bodies this module provides, by the name the workflow files use.
STEPS: dict[str, Step] = {"invoice.notify": notify_step, ORDER_STEP: notify_order_step}
