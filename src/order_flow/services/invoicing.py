"""Invoices: drafts from approved orders, gapless numbers at issue, 红字 reversals, payments.

An invoice is a draft (no number) until the ``invoice.issue`` step takes the next
number of its series from ``invoice_counters`` in the same transaction that fires
``issue``; a rollback undoes both, so a failed or cancelled draft leaves no gap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, case, func, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from order_flow.domain.enums import InvoiceType, PaymentStatus, RedReason
from order_flow.domain.invoicing import InvoiceLineDraft, plan_red, red_lines, split_lines
from order_flow.domain.money import FEN, LineAmounts, Number, Totals, round_money, to_decimal
from order_flow.domain.payment import payment_status
from order_flow.domain.tax import is_valid_tax_class_code
from order_flow.domain.text import gbk_len
from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.core import FireResult
from order_flow.engine.registry import Guard, GuardContext, Step
from order_flow.engine.steps import StepContext
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import NotFoundError, TransitionNotAllowedError, ValidationError
from order_flow.services import pdf
from order_flow.services.notify import enqueue_order_notice_in, order_notice_key
from order_flow.store.base import MONEY, QTY
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.db import insert_ignoring
from order_flow.store.invoices import Invoice, InvoiceCounter, InvoiceLine, Payment
from order_flow.store.orders import Order, OrderLine
from order_flow.store.tables import instances, outbox, tasks

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: A red-letter request open longer than this lands in the problem bucket.
RED_STUCK_DAYS = 3
#: Lifecycle states per clerk bucket (DOMAIN.md "The three buckets").
PENDING_STATES = ("pending", "review", "issuing")
ISSUED_STATES = ("issued", "sent", "reversed", "partly_reversed")
#: States in which an invoice can be paid or reversed.
PAYABLE_STATES = ("issued", "sent", "partly_reversed")
BUCKETS = ("pending", "issued", "problem")

_invoices = cast(Table, Invoice.__table__)
_payments = cast(Table, Payment.__table__)
_counters = cast(Table, InvoiceCounter.__table__)
_order_lines = cast(Table, OrderLine.__table__)
_ZERO = Decimal("0.00")
#: Bound to the invoice's `cancelled` state: gives a draft's quantities back to the order.
RELEASE_STEP = "invoice.release_lines"


@dataclass(frozen=True)
class Listed:
    """An invoice with its lifecycle state (red invoices, numbered at once, read 'issued')."""

    invoice: Invoice
    state: str


def _money(value: Any) -> Decimal:
    """A database sum as Decimal (SQLite may hand back a float for NUMERIC sums)."""
    if value is None:
        return _ZERO
    return round_money(Decimal(str(value)) if isinstance(value, float) else value)


def allocate(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``amount`` in fen proportionally to ``weights`` (largest remainder), so the
    shares add up exactly and none exceeds its weight when ``amount <= sum(weights)``."""
    total = sum(weights, _ZERO)
    if total <= 0:
        return [_ZERO for _ in weights]
    exact = [amount * w / total for w in weights]
    shares = [(e / FEN).to_integral_value(rounding="ROUND_FLOOR") * FEN for e in exact]
    left = int((amount - sum(shares, _ZERO)) / FEN)
    for i in sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)[:left]:
        shares[i] += FEN
    return shares


def issue_problem(invoice: Invoice, tolerance: Decimal) -> str | None:
    """What keeps this draft from being issued, in words for the clerk; None if nothing."""
    if not invoice.lines:
        return "发票没有明细行"
    for line in invoice.lines:
        if not line.tax_code:
            return f"商品 {line.description} 缺少税收分类编码"
        if not is_valid_tax_class_code(line.tax_code):
            return f"商品 {line.description} 的税收分类编码 {line.tax_code} 不是19位数字"
    for line in invoice.lines:
        deviation = abs(line.tax - round_money(line.net * line.tax_rate))
        if deviation > tolerance or line.net + line.tax != line.gross:
            return f"第{line.line_no}行税额 {line.tax} 与金额×税率相差 {deviation}，超出容差"
    totals = Totals.sum(invoice.lines)
    if (totals.net, totals.tax, totals.gross) != (
        invoice.total_net,
        invoice.total_tax,
        invoice.total_gross,
    ):
        return "发票合计与明细行之和不符"
    required = {"名称": invoice.buyer_name}
    if invoice.invoice_type == InvoiceType.SPECIAL:
        required |= {
            "纳税人识别号": invoice.buyer_tax_id,
            "地址电话": invoice.buyer_address_phone,
            "开户行及账号": invoice.buyer_bank_account,
        }
    missing = [label for label, value in required.items() if not (value or "").strip()]
    if missing:
        return f"购买方信息不全: 缺少{'、'.join(missing)}"
    for label, value in (
        ("名称", invoice.buyer_name),
        ("地址电话", invoice.buyer_address_phone),
        ("开户行及账号", invoice.buyer_bank_account),
    ):
        if gbk_len(value) > 100:
            return f"购买方{label}超过100字节(GBK)"
    return None


def take_number(s: Session, series: str) -> int:
    """The next number of ``series``, bumped under the row's lock in the caller's
    transaction (one ``UPDATE ... RETURNING``; a concurrent issuer waits for our commit)."""
    bump = (
        update(_counters)
        .where(_counters.c.series == series)
        .values(next_number=_counters.c.next_number + 1)
        .returning(_counters.c.next_number - 1)
    )
    number = s.execute(bump).scalar()
    if number is None:  # the series' first number; a concurrent first issuer may win
        s.execute(insert_ignoring(s, _counters, {"series": series, "next_number": 1}))
        number = s.execute(bump).scalar_one()
    return int(number)


def _reversed(s: Session, invoice_id: int) -> Decimal:
    """The magnitude reversed so far by red invoices."""
    red = s.scalar(
        select(func.sum(_invoices.c.total_gross)).where(
            _invoices.c.original_id == invoice_id, _invoices.c.kind == "red"
        )
    )
    return -_money(red)


def _given_back() -> Any:
    """Instances of cancelled invoices whose quantities went back to the order lines: their
    release job finished, in the same transaction that lowered ``qty_invoiced``."""
    return select(outbox.c.instance_id).where(
        outbox.c.step == RELEASE_STEP, outbox.c.status == "done"
    )


def _paid(s: Session, invoice_id: int) -> Decimal:
    return _money(
        s.scalar(select(func.sum(_payments.c.amount)).where(_payments.c.invoice_id == invoice_id))
    )


def _state(s: Session, instance_id: int | None) -> str:
    if instance_id is None:
        return "issued"
    return str(s.scalar(select(instances.c.state).where(instances.c.id == instance_id)))


def _open_task(s: Session, instance_id: int | None, state: str) -> int:
    task_id = s.scalar(
        select(tasks.c.id).where(
            tasks.c.instance_id == instance_id, tasks.c.state == state, tasks.c.status == "open"
        )
    )
    if task_id is None:
        raise TransitionNotAllowedError(f"the invoice has no open '{state}' task")
    return int(task_id)


def _require_comment(comment: str | None) -> str:
    if not (comment or "").strip():
        raise ValidationError({"comment": "a reason is required"})
    return str(comment).strip()


class InvoiceService:
    def __init__(self, app: App) -> None:
        self.app = app

    def _today(self) -> date:
        return self._now().astimezone(ZoneInfo(self.app.settings.timezone)).date()

    def _now(self) -> datetime:
        return self.app.engine.clock()

    # -- drafting ------------------------------------------------------------------

    def create_for_order_in(self, uow: UnitOfWork, order_id: int) -> list[Invoice]:
        """Draft pending invoices for what is reserved and not yet billed; start their flows."""
        s = uow.session
        s.flush()
        order = s.scalars(
            select(Order)
            .where(Order.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if order is None:
            raise NotFoundError(f"order {order_id} does not exist")
        lines = s.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.line_no)
            .execution_options(populate_existing=True)
        ).all()
        drafts = [d for line in lines if (d := self._draft(s, order, line)) is not None]
        if not drafts:
            return []
        cfg = self.app.settings
        try:
            pieces = split_lines(drafts, cfg.invoice_max_net, cfg.invoice_max_lines)
        except ValueError as exc:
            raise ValidationError({"lines": str(exc)}) from None
        customer = s.get_one(Customer, order.customer_id)
        by_id = {line.id: line for line in lines}
        products = {
            p.id: p
            for p in s.scalars(select(Product).where(Product.id.in_({x.product_id for x in lines})))
        }
        last_part = s.scalar(
            select(func.max(Invoice.part)).where(
                Invoice.order_id == order_id, Invoice.kind == "blue"
            )
        )
        today = self._today()
        labels = {
            cat: self.app.catalog.rate_for(s, cat, today).label
            for cat in {line.tax_category for line in lines}
        }
        created: list[Invoice] = []
        for n, piece in enumerate(pieces, start=(last_part or 0) + 1):
            totals = Totals.sum(piece)
            invoice = Invoice(
                order_id=order_id,
                part=n,
                kind="blue",
                red_seq=0,
                invoice_type=customer.invoice_type,
                total_net=totals.net,
                total_tax=totals.tax,
                total_gross=totals.gross,
                payment_status=PaymentStatus.UNPAID.value,
                prepared_by=SYSTEM.name,
            )
            self._snapshot_buyer(invoice, customer)
            for no, d in enumerate(piece, start=1):
                line = by_id[int(d.order_line_id)]
                product = products[line.product_id]
                invoice.lines.append(
                    InvoiceLine(
                        order_line_id=line.id,
                        line_no=no,
                        description=d.description,
                        tax_code=product.tax_code,
                        unit=product.unit,
                        qty=d.qty,
                        unit_price=d.unit_price,
                        tax_rate=d.rate,
                        tax_label=labels[line.tax_category],
                        net=d.net,
                        tax=d.tax,
                        gross=d.gross,
                    )
                )
            s.add(invoice)
            created.append(invoice)
        for d in drafts:
            by_id[int(d.order_line_id)].qty_invoiced += d.qty
        s.flush()  # ids for the instances; the unique part key refuses a second run
        for invoice in created:
            context = {
                "order_number": order.number,
                "number": "",
                "problem": "",
                "reason": "",
                "prepared_by": invoice.prepared_by,
            }
            started = self.app.engine.start_in(
                uow, "invoice", "invoice", str(invoice.id), SYSTEM,
                context=context, priority=order.priority,
            )  # fmt: skip
            invoice.instance_id = started.instance_id
        s.flush()
        return created

    def create_for_order(self, order_id: int) -> list[Invoice]:
        """Draft what is reserved and not yet billed, e.g. again after a draft was cancelled."""
        with self.app.engine.uow() as uow:
            created = self.create_for_order_in(uow, order_id)
            uow.commit()
        return created

    def _draft(self, s: Session, order: Order, line: OrderLine) -> InvoiceLineDraft | None:
        """The reserved or delivered, unbilled part of ``line`` (a delivery moves quantity
        from qty_reserved to qty_delivered); the piece completing the line takes the rest
        of its amounts, so the invoices add up to the order to the fen."""
        qty = min(line.qty, line.qty_reserved + line.qty_delivered) - line.qty_invoiced
        if qty <= 0:
            return None
        inclusive = order.pricing == "inclusive"
        if line.qty_invoiced + qty != line.qty:
            return InvoiceLineDraft.build(
                line.id, line.description, qty, line.unit_price, line.tax_rate, inclusive
            )
        billed = s.execute(
            select(
                func.sum(InvoiceLine.net), func.sum(InvoiceLine.tax), func.sum(InvoiceLine.gross)
            )
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                InvoiceLine.order_line_id == line.id,
                Invoice.kind == "blue",
                or_(Invoice.instance_id.is_(None), Invoice.instance_id.not_in(_given_back())),
            )
        ).one()
        done = LineAmounts(*(_money(x) for x in billed))
        return InvoiceLineDraft(
            line.id, line.description, qty, line.unit_price, line.tax_rate, inclusive,
            line.net - done.net, line.tax - done.tax, line.gross - done.gross,
        )  # fmt: skip

    @staticmethod
    def _snapshot_buyer(invoice: Invoice, customer: Customer) -> None:
        invoice.buyer_name = customer.name
        invoice.buyer_tax_id = customer.tax_id or ""
        invoice.buyer_address_phone = f"{customer.address} {customer.phone}".strip()
        invoice.buyer_bank_account = f"{customer.bank} {customer.account}".strip()

    def refresh_draft(self, s: Session, invoice: Invoice) -> None:
        """Re-read tax codes and buyer data into an unnumbered draft (after a clerk's fix)."""
        if invoice.number is not None:
            return
        ids = {line.order_line_id for line in invoice.lines}
        rows = s.execute(
            select(OrderLine.id, Product.tax_code)
            .join(Product, Product.id == OrderLine.product_id)
            .where(OrderLine.id.in_(ids))
        )
        codes = {line_id: code for line_id, code in rows}
        for line in invoice.lines:
            if line.order_line_id in codes:
                line.tax_code = codes[line.order_line_id]
        order = s.get_one(Order, invoice.order_id)
        self._snapshot_buyer(invoice, s.get_one(Customer, order.customer_id))

    # -- problems ----------------------------------------------------------------

    def retry_problem(
        self, invoice_id: int, actor: Actor, comment: str | None = None
    ) -> FireResult:
        """After the data was fixed elsewhere: complete the problem task with 'fix'."""
        with self.app.engine.uow() as uow:
            s = uow.session
            invoice = self._blue(s, invoice_id)
            task_id = _open_task(s, invoice.instance_id, "problem")
            invoice.problem = None
            s.flush()
            result = self.app.tasks.complete_in(uow, task_id, "fix", actor, comment)
            uow.commit()
        return result

    fix_problem = retry_problem

    # -- red letter (红字发票) -----------------------------------------------------

    def request_red(
        self,
        invoice_id: int,
        actor: Actor,
        reason_code: RedReason | str,
        amount: Number | None = None,
        comment: str = "",
    ) -> FireResult:
        """Ask to reverse ``amount`` (gross; None = all that is unreversed) of a blue invoice."""
        errors: dict[str, str] = {}
        reason = RedReason.__members__.get(str(reason_code))
        if reason is None and str(reason_code) in {r.value for r in RedReason}:
            reason = RedReason(str(reason_code))
        if reason is None:
            errors["reason_code"] = f"must be one of {', '.join(r.value for r in RedReason)}"
        if not (comment or "").strip():
            errors["comment"] = "a reason is required"
        with self.app.engine.uow() as uow:
            s = uow.session
            invoice = self._blue(s, invoice_id)
            done = _reversed(s, invoice.id)
            try:
                want = invoice.total_gross - done if amount is None else to_decimal(amount)
                plan_red(invoice.total_gross, done, want)
            except (TypeError, ValueError) as exc:
                errors["amount"] = str(exc)
            if errors:
                raise ValidationError(errors)
            assert reason is not None and invoice.instance_id is not None
            result = self.app.engine.fire_in(
                uow,
                invoice.instance_id,
                "request_red",
                actor,
                reason=comment.strip(),
                context_update={
                    "reason": reason.value,
                    "red_amount": str(want),
                    "red_reason": reason.value,
                },
            )
            uow.commit()
        return result

    def approve_red(self, invoice_id: int, actor: Actor, comment: str) -> Invoice:
        """Issue the red invoice for the requested amount and close the request, in one go."""
        comment = _require_comment(comment)
        with self.app.engine.uow() as uow:
            s = uow.session
            blue = self._blue(s, invoice_id, lock=True)
            row = self.app.engine.load(s, blue.instance_id or 0)
            if row.state != "red_requested":
                raise TransitionNotAllowedError(f"invoice {invoice_id} has no open red request")
            task_id = _open_task(s, blue.instance_id, "red_requested")
            try:
                plan = plan_red(
                    blue.total_gross, _reversed(s, blue.id), to_decimal(row.context["red_amount"])
                )
            except ValueError as exc:
                raise ValidationError({"amount": str(exc)}) from None
            red = self._build_red(s, blue, -plan.red_amount, row.context.get("red_reason"), actor)
            s.flush()  # the fully_reversed guard reads it
            outcome = "reverse" if plan.fully_reversed else "partly_reverse"
            self.app.tasks.complete_in(uow, task_id, outcome, actor, comment)
            uow.commit()
        return red

    def _build_red(
        self, s: Session, blue: Invoice, amount: Decimal, reason: str | None, actor: Actor
    ) -> Invoice:
        reds = s.scalars(select(Invoice).where(Invoice.original_id == blue.id)).all()
        done: dict[int | None, LineAmounts] = defaultdict(lambda: LineAmounts(_ZERO, _ZERO, _ZERO))
        for red_line in (x for r in reds for x in r.lines):
            d = done[red_line.order_line_id]
            done[red_line.order_line_id] = LineAmounts(
                d.net + red_line.net, d.tax + red_line.tax, d.gross + red_line.gross
            )
        drafts = [
            InvoiceLineDraft(
                i, x.description, x.qty, x.unit_price, x.tax_rate, False, x.net, x.tax, x.gross
            )
            for i, x in enumerate(blue.lines)
        ]
        so_far = [done[x.order_line_id] for x in blue.lines]
        shares = allocate(
            amount, [x.gross - abs(d.gross) for x, d in zip(drafts, so_far, strict=True)]
        )
        negative = red_lines(drafts, amounts=shares, reversed_so_far=so_far)
        totals = Totals.sum(negative)
        now, today = self._now(), self._today()
        red = Invoice(
            order_id=blue.order_id,
            part=blue.part,
            kind="red",
            red_seq=max((r.red_seq for r in reds), default=0) + 1,
            original_id=blue.id,
            red_reason=reason,
            invoice_type=blue.invoice_type,
            buyer_name=blue.buyer_name,
            buyer_tax_id=blue.buyer_tax_id,
            buyer_address_phone=blue.buyer_address_phone,
            buyer_bank_account=blue.buyer_bank_account,
            total_net=totals.net,
            total_tax=totals.tax,
            total_gross=totals.gross,
            payment_status=payment_status(totals.gross, _ZERO, None, today).value,
            prepared_by=actor.name,
            issued_at=now,
        )
        for no, r in enumerate(negative, start=1):
            src = blue.lines[int(r.order_line_id)]
            red.lines.append(
                InvoiceLine(
                    order_line_id=src.order_line_id, line_no=no, description=r.description,
                    tax_code=src.tax_code, unit=src.unit, qty=r.qty, unit_price=r.unit_price,
                    tax_rate=r.rate, tax_label=src.tax_label, net=r.net, tax=r.tax, gross=r.gross,
                )
            )  # fmt: skip
        red.series = f"{today.year}-{red.invoice_type}"
        red.number = take_number(s, red.series)
        s.add(red)
        s.flush()
        if self.app.settings.invoice_pdf:  # numbered now, so its PDF is kept like blue's
            pdf.store_invoice_pdf(s, red, self.app)
        return red

    # -- payments --------------------------------------------------------------------

    def record_payment(
        self,
        invoice_id: int,
        amount: Number,
        paid_on: date,
        actor: Actor,
        reference: str | None = None,
        method: str = "transfer",
        note: str = "",
    ) -> Payment:
        """Record money received against an issued blue invoice, at most what is outstanding."""
        errors: dict[str, str] = {}
        try:
            value = to_decimal(amount)
            if value <= 0 or value != round_money(value):
                errors["amount"] = "must be a positive amount in fen"
        except (TypeError, ValueError) as exc:
            errors["amount"], value = str(exc), _ZERO
        reference = (reference or "").strip() or None
        if reference is not None and len(reference) > 64:
            errors["reference"] = "at most 64 characters"
        if not method or len(method) > 16:
            errors["method"] = "give a payment method of at most 16 characters"
        with self.app.engine.uow() as uow:
            s = uow.session
            invoice = self._blue(s, invoice_id, lock=True)
            state = _state(s, invoice.instance_id)
            if state not in PAYABLE_STATES:
                errors["invoice_id"] = f"an invoice in state '{state}' cannot be paid"
            if reference and s.scalar(select(Payment.id).where(Payment.reference == reference)):
                errors["reference"] = f"a payment with reference {reference} is already recorded"
            paid, done = _paid(s, invoice.id), _reversed(s, invoice.id)
            owed = invoice.total_gross - done - paid
            if "amount" not in errors and value > owed:
                errors["amount"] = f"exceeds the outstanding {owed}"
            if errors:
                raise ValidationError(errors)
            payment = Payment(
                invoice_id=invoice.id, amount=value, paid_on=paid_on, method=method,
                reference=reference, note=note, recorded_by=actor.name,
            )  # fmt: skip
            s.add(payment)
            try:
                s.flush()
            except IntegrityError:  # a concurrent import of the same bank reference
                raise ValidationError({"reference": "this reference is already recorded"}) from None
            status = payment_status(
                invoice.total_gross - done, paid + value, invoice.due_date, self._today()
            )
            invoice.payment_status = status.value
            uow.commit()
        return payment

    def refresh_payment_status(self, today: date) -> int:
        """The daily job: recompute every issued blue invoice's status in one UPDATE
        (the rules of domain.payment.payment_status); returns how many changed.

        Each invoice that became overdue gets one reminder to the customer, queued in
        the same transaction (keyed by invoice and day: a second run that day sends none).
        """
        red = _invoices.alias("red")
        paid = (
            select(func.coalesce(func.sum(_payments.c.amount), 0))
            .where(_payments.c.invoice_id == _invoices.c.id)
            .scalar_subquery()
        )
        reversed_ = (
            select(func.coalesce(func.sum(red.c.total_gross), 0))
            .where(red.c.original_id == _invoices.c.id, red.c.kind == "red")
            .scalar_subquery()
        )
        owed = func.round(_invoices.c.total_gross + reversed_ - paid, 2)
        status = case(
            (owed <= 0, PaymentStatus.PAID.value),
            (_invoices.c.due_date < today, PaymentStatus.OVERDUE.value),
            (func.round(paid, 2) > 0, PaymentStatus.PARTIAL.value),
            else_=PaymentStatus.UNPAID.value,
        )
        with self.app.engine.uow() as uow:
            rows = uow.session.execute(
                update(_invoices)
                .where(
                    _invoices.c.kind == "blue",
                    _invoices.c.number.is_not(None),
                    _invoices.c.payment_status != status,
                )
                .values(payment_status=status)
                .returning(_invoices.c.id, _invoices.c.order_id, _invoices.c.payment_status)
            ).all()
            overdue = [(i, o) for i, o, st in rows if st == PaymentStatus.OVERDUE.value]
            self._remind_overdue_in(uow, overdue, today)
            uow.commit()
        return len(rows)

    def _remind_overdue_in(
        self, uow: UnitOfWork, overdue: Sequence[tuple[int, int]], today: date
    ) -> None:
        if not overdue:
            return
        ids = {order_id for _, order_id in overdue}
        orders = {o.id: o for o in uow.session.scalars(select(Order).where(Order.id.in_(ids)))}
        for invoice_id, order_id in sorted(overdue):
            key = order_notice_key(order_id, "invoice_overdue", invoice_id, today.isoformat())
            enqueue_order_notice_in(
                self.app, uow, orders[order_id], "invoice_overdue", key, invoice_id
            )

    # -- reads ---------------------------------------------------------------------

    def _blue(self, s: Session, invoice_id: int, lock: bool = False) -> Invoice:
        stmt = select(Invoice).where(Invoice.id == invoice_id, Invoice.kind == "blue")
        invoice = s.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
        if invoice is None:
            raise NotFoundError(f"blue invoice {invoice_id} does not exist")
        return invoice

    def get(self, invoice_id: int) -> Invoice:
        with self.app.engine.session_factory() as s:
            invoice = s.get(Invoice, invoice_id)
            if invoice is None:
                raise NotFoundError(f"invoice {invoice_id} does not exist")
            return invoice

    def _bucket_conditions(self) -> dict[str, ColumnElement[bool]]:
        state = instances.c.state
        stuck = self._now() - timedelta(days=RED_STUCK_DAYS)
        return {
            "pending": state.in_(PENDING_STATES),
            "issued": state.in_(ISSUED_STATES),
            "problem": or_(
                state == "problem",
                and_(state == "red_requested", instances.c.entered_at < stuck),
                _invoices.c.payment_status == PaymentStatus.OVERDUE.value,
            ),
        }

    def buckets(self, session: Session | None = None) -> dict[str, dict[str, Any]]:
        """{bucket: {"count": n, "amount": sum of gross}} for blue invoices, in one query.
        An overdue invoice counts in 'issued' and in 'problem'."""
        if session is None:
            with self.app.engine.session_factory() as s:
                return self.buckets(s)
        conditions = self._bucket_conditions()
        columns: list[ColumnElement[Any]] = []
        for cond in conditions.values():
            columns.append(func.count(case((cond, 1))))
            columns.append(func.sum(type_coerce(case((cond, _invoices.c.total_gross)), MONEY)))
        row = session.execute(
            select(*columns)
            .select_from(_invoices.join(instances, instances.c.id == _invoices.c.instance_id))
            .where(_invoices.c.kind == "blue")
        ).one()
        return {
            name: {"count": int(row[2 * i] or 0), "amount": _money(row[2 * i + 1])}
            for i, name in enumerate(conditions)
        }

    def list(
        self,
        state: str | None = None,
        customer_id: int | None = None,
        order_id: int | None = None,
        bucket: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Listed]:
        """Newest first; red invoices have no lifecycle and list as 'issued'."""
        if bucket is not None and bucket not in BUCKETS:
            raise ValidationError({"bucket": f"must be one of {', '.join(BUCKETS)}"})
        if not 1 <= limit <= 500:
            raise ValidationError({"limit": "must be between 1 and 500"})
        if offset < 0:
            raise ValidationError({"offset": "must not be negative"})
        state_col = func.coalesce(instances.c.state, "issued")
        stmt = (
            select(Invoice, state_col)
            .outerjoin(instances, instances.c.id == Invoice.instance_id)
            .order_by(Invoice.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if state is not None:
            stmt = stmt.where(state_col == state)
        if order_id is not None:
            stmt = stmt.where(Invoice.order_id == order_id)
        if customer_id is not None:
            stmt = stmt.join(Order, Order.id == Invoice.order_id).where(
                Order.customer_id == customer_id
            )
        if bucket is not None:
            stmt = stmt.where(Invoice.kind == "blue", self._bucket_conditions()[bucket])
        with self.app.engine.session_factory() as s:
            return [Listed(inv, str(st)) for inv, st in s.execute(stmt)]


# -- steps and guards ---------------------------------------------------------------


def _subject(ctx: StepContext) -> Invoice:
    return ctx.uow.session.get_one(Invoice, int(ctx.instance.subject_id))


def prepare_step(ctx: StepContext) -> None:
    """Refresh the draft from master data, then to review or straight to issuing."""
    ctx.app.invoices.refresh_draft(ctx.uow.session, _subject(ctx))
    ctx.fire("needs_review" if ctx.app.settings.invoice_review else "prepared")


def issue_step(ctx: StepContext) -> None:
    """Check the draft; number it from its series and fire ``issue``, or fire ``fail``."""
    s, service = ctx.uow.session, ctx.app.invoices
    invoice = _subject(ctx)
    problem = issue_problem(invoice, ctx.app.settings.invoice_tax_tolerance)
    if problem is not None:
        invoice.problem = problem
        s.flush()
        ctx.fire("fail", context_update={"problem": problem})
        return
    order = s.get_one(Order, invoice.order_id)
    customer = s.get_one(Customer, order.customer_id)
    today = service._today()
    invoice.series = f"{today.year}-{invoice.invoice_type}"
    invoice.number = take_number(s, invoice.series)
    invoice.issued_at = service._now()
    invoice.due_date = today + timedelta(days=customer.payment_days)
    invoice.problem = None
    s.flush()
    if ctx.app.settings.invoice_pdf:  # same transaction: a rollback undoes both
        pdf.store_invoice_pdf(s, invoice, ctx.app)
    ctx.fire("issue", context_update={"number": invoice.display_number})
    if order.instance_id is not None:  # this bill may be what the order waited for
        ctx.app.orders.complete_if_done_in(ctx.uow, order)


def release_lines_step(ctx: StepContext) -> None:
    """Cancelled: give the never-numbered draft's quantities back to its order lines
    (``qty_invoiced`` down), so they can be invoiced again. Runs once: the job's end
    commits with the change and marks it done (see _given_back)."""
    s = ctx.uow.session
    invoice = _subject(ctx)
    if invoice.number is not None or invoice.kind != "blue":
        return  # numbered: billed for good, a red invoice reverses it
    # The order's lock serialises this with create_for_order_in.
    s.execute(select(Order.id).where(Order.id == invoice.order_id).with_for_update())
    for line in invoice.lines:
        if line.order_line_id is None:
            continue
        s.execute(
            update(_order_lines)
            .where(_order_lines.c.id == line.order_line_id)
            .values(qty_invoiced=func.round(_order_lines.c.qty_invoiced - line.qty, 8, type_=QTY))
        )
    s.expire_all()


def fully_reversed(ctx: GuardContext) -> bool:
    """The red invoices of the instance's blue invoice add up to its whole gross."""
    invoice_id = int(ctx.instance.subject_id)
    gross = ctx.session.scalar(select(_invoices.c.total_gross).where(_invoices.c.id == invoice_id))
    return gross is not None and _money(gross) == _reversed(ctx.session, invoice_id)


#: Guards this module provides, by the name the workflow files use.
GUARDS: dict[str, Guard] = {"fully_reversed": fully_reversed}
#: Step bodies this module provides, by the name the workflow files use.
STEPS: dict[str, Step] = {
    "invoice.prepare": prepare_step,
    "invoice.issue": issue_step,
    RELEASE_STEP: release_lines_step,
}
