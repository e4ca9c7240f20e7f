"""The order's automated steps and the guards that read order and invoice data.

``order.run_checks`` runs, in order: validation -> duplicate -> credit -> stock ->
special classification -> double review, and fires exactly one trigger. The first
failing check puts the order on hold with its reason code.

Decisions worth knowing:

- **Credit limit 0 means no credit at all**, not "no limit": every customer has a
  limit, and a customer without one (cash in advance) has every order held with
  ``CREDIT`` until a supervisor overrides it. Exposure is open receivables (issued
  blue invoices minus red ones minus payments) + the not yet invoiced part of the
  customer's approved orders + this order's gross.
- **Duplicates** are looked for among the customer's orders that left draft and were
  neither cancelled nor superseded by an amendment (an abandoned draft is no order).
- An order's ``hold_reason`` says why it stopped last; approval clears it. Its
  ``hold_detail`` is for the clerks (and the customer's on-hold mail), so it is
  written in Chinese, with the figures.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from order_flow.config import Settings
from order_flow.domain.enums import HoldReason, InvoiceType, StockPolicy
from order_flow.engine.registry import Guard, GuardContext, Step
from order_flow.engine.steps import StepContext
from order_flow.errors import NotFoundError
from order_flow.services.notify import enqueue_order_notice_in, order_notice_key
from order_flow.store.base import QTY
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice, InvoiceLine, Payment
from order_flow.store.orders import Order, OrderLine
from order_flow.store.tables import instances

_ZERO = Decimal("0.00")
#: States whose orders a duplicate is compared with: not drafts, not cancelled or amended.
_NOT_COMPARED = ("draft", "cancelled", "amended")
#: What a 专票 buyer must carry (DOMAIN: Customers).
_SPECIAL_INVOICE_FIELDS = ("name", "tax_id", "address", "phone", "bank", "account")
#: How hold details name the customer fields and sign-off groups.
_FIELD_NAMES = {
    "name": "名称",
    "tax_id": "税号",
    "address": "地址",
    "phone": "电话",
    "bank": "开户行",
    "account": "账号",
}
_GROUP_NAMES = {"warehouse": "仓库", "production": "生产", "logistics": "物流", "sales": "销售"}

Failure = tuple[HoldReason, str]


def order_of(s: Session, instance: Any) -> Order:
    order = s.scalar(select(Order).where(Order.instance_id == instance.id))
    if order is None:
        raise NotFoundError(f"no order runs on workflow instance {instance.id}")
    return order


# -- the checks, each returning a failure or None -------------------------------------


def check_validation(s: Session, order: Order, customer: Customer) -> Failure | None:
    if customer.blocked:
        return HoldReason.CUSTOMER_BLOCKED, f"客户 {customer.code} 已被冻结"
    for line in order.lines:
        product = s.get(Product, line.product_id)
        if product is None or not product.active:
            return HoldReason.DATA, f"第 {line.line_no} 行: 商品已停用"
    if customer.invoice_type == InvoiceType.SPECIAL.value:
        missing = [f for f in _SPECIAL_INVOICE_FIELDS if not (getattr(customer, f) or "").strip()]
        if missing:
            return HoldReason.DATA, "专票客户缺少: " + "、".join(_FIELD_NAMES[f] for f in missing)
    return None


def _line_key(order: Order) -> Counter[tuple[int, Decimal]]:
    return Counter((ln.product_id, ln.qty.normalize()) for ln in order.lines)


def check_duplicate(s: Session, order: Order, window_hours: int) -> Failure | None:
    others = (
        select(Order)
        .join(instances, instances.c.id == Order.instance_id)
        .where(
            Order.customer_id == order.customer_id,
            Order.id != order.id,
            instances.c.state.not_in(_NOT_COMPARED),
        )
    )
    if order.customer_po:
        match = s.scalar(others.where(Order.customer_po == order.customer_po).limit(1))
        if match is not None:
            return (
                HoldReason.DUPLICATE,
                f"客户采购单号 {order.customer_po} 已用于订单 {match.number}",
            )
        return None
    window = timedelta(hours=window_hours)
    near = others.where(
        Order.created_at >= order.created_at - window,
        Order.created_at <= order.created_at + window,
    )
    mine = _line_key(order)
    for other in s.scalars(near.order_by(Order.id)):
        if _line_key(other) == mine:
            return (
                HoldReason.DUPLICATE,
                f"与订单 {other.number} 的明细相同 ({window_hours} 小时内)",
            )
    return None


def exposure(s: Session, customer_id: int, exclude_order_id: int | None = None) -> Decimal:
    """Open receivables + approved-but-uninvoiced orders of the customer (not this order).

    One statement: its five sums are scalar subqueries of one SELECT, over the
    customer's orders read first by the customer index (a MATERIALIZED CTE). The
    fence keeps the plan from following stale statistics of ``orders.state`` (the
    engine's copy of the instance's state) into a scan of every approved order in
    the system, as it did at peak in bench/backlog before the tables were analyzed.
    """
    mine = (
        select(Order.id, Order.state, Order.total_gross)
        .where(Order.customer_id == customer_id)
        .cte("customer_orders")
        .prefix_with("MATERIALIZED")
    )
    of_customer = select(mine.c.id)
    issued = (Invoice.order_id.in_(of_customer), Invoice.number.is_not(None))
    blue = select(func.coalesce(func.sum(Invoice.total_gross), 0)).where(
        *issued, Invoice.kind == "blue"
    )
    # red amounts are negative; abs() keeps either sign convention right
    red = select(func.coalesce(func.sum(func.abs(Invoice.total_gross)), 0)).where(
        *issued, Invoice.kind == "red"
    )
    paid = (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.order_id.in_(of_customer), Invoice.kind == "blue")
    )
    approved = [mine.c.state == "approved"]
    if exclude_order_id is not None:
        approved.append(mine.c.id != exclude_order_id)
    ordered = select(func.coalesce(func.sum(mine.c.total_gross), 0)).where(*approved)
    billed = select(func.coalesce(func.sum(Invoice.total_gross), 0)).where(
        Invoice.order_id.in_(select(mine.c.id).where(*approved)),
        Invoice.kind == "blue",
        Invoice.number.is_not(None),
    )
    sums = s.execute(
        select(*(q.scalar_subquery() for q in (blue, red, paid, ordered, billed)))
    ).one()
    blue_v, red_v, paid_v, ordered_v, billed_v = (Decimal(str(v or 0)) for v in sums)
    receivables = blue_v - red_v - paid_v
    unbilled = ordered_v - billed_v
    return max(receivables, _ZERO) + max(unbilled, _ZERO)


def check_credit(s: Session, order: Order, customer: Customer) -> Failure | None:
    total = exposure(s, customer.id, exclude_order_id=order.id) + order.total_gross
    if total > customer.credit_limit:
        return (
            HoldReason.CREDIT,
            f"信用敞口 {total:.2f} 超过信用额度 {customer.credit_limit:.2f}",
        )
    return None


def check_stock(ctx: StepContext, order: Order, customer: Customer) -> Failure | None:
    if customer.stock_policy != StockPolicy.COMPLETE.value:
        return None  # partial: ship what is there, backorder the rest at reservation
    needed: dict[int, Decimal] = {}
    for line in order.lines:
        open_qty = line.qty - line.qty_delivered - line.qty_reserved
        needed[line.product_id] = needed.get(line.product_id, _ZERO) + open_qty
    short = []
    for product_id, qty in sorted(needed.items()):
        available = ctx.app.catalog.available(ctx.uow.session, product_id)
        if qty > available:
            product = ctx.uow.session.get(Product, product_id)
            name = product.name if product is not None else f"#{product_id}"
            short.append(f"商品 {name} 需要 {_plain(qty)}, 可用 {_plain(available)}")
    if short:
        return HoldReason.STOCK_SHORT, "; ".join(short)
    return None


def _plain(value: Decimal) -> str:
    """A quantity as written (1E+2 -> 100)."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def needs_double_review(order: Order, settings: Settings) -> bool:
    if order.total_gross >= settings.double_review_amount:
        return True
    return bool(settings.double_review_without_template and order.template_id is None)


# -- the steps -------------------------------------------------------------------------


def run_checks(ctx: StepContext) -> None:
    s = ctx.uow.session
    order = order_of(s, ctx.instance)
    customer = s.get(Customer, order.customer_id)
    if customer is None:
        raise NotFoundError(f"order {order.id}: customer {order.customer_id} does not exist")
    settings = ctx.app.settings
    failure = (
        check_validation(s, order, customer)
        or check_duplicate(s, order, settings.duplicate_window_hours)
        or check_credit(s, order, customer)
        or check_stock(ctx, order, customer)
    )
    if failure is not None:
        code, detail = failure
        order.hold_reason, order.hold_detail = code.value, detail
        held = ctx.fire(
            "hold",
            reason=detail,
            context_update={"hold_reason": code.value, "hold_detail": detail},
        )
        # After the fire: leaving `submitted` cancels the instance's open jobs.
        key = order_notice_key(order.id, "order_on_hold", held.version)
        enqueue_order_notice_in(ctx.app, ctx.uow, order, "order_on_hold", key)
    elif order.special:
        # Should a group reject, the order lands on hold for this reason.
        groups = "、".join(_GROUP_NAMES.get(g, g) for g in order.signoff_groups)
        detail = f"特殊订单, 需会签: {groups}"
        order.hold_reason, order.hold_detail = HoldReason.SPECIAL.value, detail
        ctx.fire(
            "needs_feasibility",
            context_update={
                "signoff_groups": list(order.signoff_groups),
                "hold_reason": HoldReason.SPECIAL.value,
                "hold_detail": detail,
            },
        )
    else:
        order.hold_reason = order.hold_detail = None
        trigger = "needs_review" if needs_double_review(order, settings) else "checks_passed"
        ctx.fire(trigger, context_update={"hold_reason": "", "hold_detail": ""})
    s.flush()


def reserve_and_invoice(ctx: StepContext) -> None:
    """Approved: confirm to the customer, reserve each line's open quantity, then draft
    pending invoices for what is reserved.

    Fires nothing: the order waits in approved for delivery and billing. While a line
    is short (backorder), the job defers itself by ``backorder_retry_minutes`` and runs
    again, reserving and invoicing what has arrived, until everything is reserved.
    """
    s = ctx.uow.session
    order = order_of(s, ctx.instance)
    # The version that entered `approved`: a deferred re-run finds the key queued.
    key = order_notice_key(order.id, "order_confirmed", ctx.instance.version)
    enqueue_order_notice_in(ctx.app, ctx.uow, order, "order_confirmed", key)
    customer = s.get(Customer, order.customer_id)
    partial = customer is not None and customer.stock_policy == StockPolicy.PARTIAL.value
    order.approved_at = order.approved_at or ctx.app.engine.clock()
    order.hold_reason = order.hold_detail = None
    s.flush()
    for line in list(order.lines):
        need = line.qty - line.qty_delivered - line.qty_reserved
        if need > 0:  # a redelivered job finds nothing left to reserve
            ctx.app.catalog.reserve_in(ctx.uow, line.id, line.product_id, need, partial)
    ctx.app.invoices.create_for_order_in(ctx.uow, order.id)
    if _backordered(s, order.id):
        minutes = ctx.app.settings.backorder_retry_minutes
        ctx.defer(ctx.app.engine.clock() + timedelta(minutes=minutes))


def _backordered(s: Session, order_id: int) -> bool:
    """Some line still waits for stock (neither delivered nor reserved in full)."""
    short = s.scalar(
        select(OrderLine.id)
        .where(
            OrderLine.order_id == order_id,
            func.round(OrderLine.qty - OrderLine.qty_delivered - OrderLine.qty_reserved, 8) > 0,
        )
        .limit(1)
    )
    return short is not None


# -- the guards ---------------------------------------------------------------------------


def _subject_order_id(ctx: GuardContext) -> int | None:
    if ctx.instance.subject_type != "order" or not str(ctx.instance.subject_id).isdigit():
        return None
    return int(ctx.instance.subject_id)


def no_invoice_issued(ctx: GuardContext) -> bool:
    """No blue invoice of the order has a number yet (cancel and amend need this)."""
    order_id = _subject_order_id(ctx)
    if order_id is None:
        return True
    issued = ctx.session.scalar(
        select(Invoice.id)
        .where(Invoice.order_id == order_id, Invoice.kind == "blue", Invoice.number.is_not(None))
        .limit(1)
    )
    return issued is None


def issued_quantities(s: Session, order_id: int) -> dict[int, Decimal]:
    """Per order line: the quantity on numbered invoices, blue minus red (red lines carry
    negative quantities). Drafts, pending or cancelled, bill nothing."""
    billed = func.round(func.sum(InvoiceLine.qty), 8, type_=QTY)
    rows = s.execute(
        select(InvoiceLine.order_line_id, billed)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(Invoice.order_id == order_id, Invoice.number.is_not(None))
        .group_by(InvoiceLine.order_line_id)
    ).all()
    return {int(line_id): Decimal(str(qty)) for line_id, qty in rows if line_id is not None}


def fully_delivered_and_billed_in(s: Session, order_id: int) -> bool:
    """Every line of the order is delivered in full and billed in full on issued invoices."""
    lines = s.execute(
        select(OrderLine.id, OrderLine.qty, OrderLine.qty_delivered).where(
            OrderLine.order_id == order_id
        )
    ).all()
    billed = issued_quantities(s, order_id)
    return bool(lines) and all(
        d >= q and billed.get(line_id, _ZERO) >= q for line_id, q, d in lines
    )


def fully_delivered_and_billed(ctx: GuardContext) -> bool:
    """Every line of the order is delivered and invoiced in full (issued invoices only)."""
    order_id = _subject_order_id(ctx)
    if order_id is None:
        return False
    return fully_delivered_and_billed_in(ctx.session, order_id)


#: Guards this module provides, by the name the workflow files use.
GUARDS: dict[str, Guard] = {
    "no_invoice_issued": no_invoice_issued,
    "fully_delivered_and_billed": fully_delivered_and_billed,
}
#: Step bodies this module provides, by the name the workflow files use.
STEPS: dict[str, Step] = {
    "order.run_checks": run_checks,
    "order.reserve_and_invoice": reserve_and_invoice,
}
