"""Invoices: read, list by bucket, the bucket counts, and payments."""

from __future__ import annotations

from sqlalchemy import func, select

from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order
from order_flow.store.tables import instances
from web import of_app
from web.api.auth import ANY_USER, FINANCE
from web.api.routing import Call, Result, operation
from web.api.schemas import InvoiceQuery, PaymentIn
from web.api.work_views import (
    BucketsOut,
    InvoiceOut,
    InvoicePage,
    PaymentOut,
    buckets_out,
    invoice_out,
    payment_out,
)


def _count(q: InvoiceQuery) -> int:
    """The total of the filtered set (InvoiceService.list returns one page only)."""
    state_col = func.coalesce(instances.c.state, "issued")
    stmt = select(func.count(Invoice.id)).outerjoin(
        instances, instances.c.id == Invoice.instance_id
    )
    if q.state is not None:
        stmt = stmt.where(state_col == q.state)
    if q.order_id is not None:
        stmt = stmt.where(Invoice.order_id == q.order_id)
    if q.customer_id is not None:
        stmt = stmt.join(Order, Order.id == Invoice.order_id).where(
            Order.customer_id == q.customer_id
        )
    service = of_app().invoices
    if q.bucket is not None:
        stmt = stmt.where(Invoice.kind == "blue", service._bucket_conditions()[q.bucket])
    with service.app.engine.session_factory() as s:
        return int(s.scalar(stmt) or 0)


@operation(
    "GET", "/invoices", summary="List invoices", tag="invoices", rule=ANY_USER,
    query=InvoiceQuery, response=InvoicePage,
    description="Newest first. `bucket` is the clerk's view: pending (待开), issued (已开) "
    "or problem (问题发票: problems, stuck red requests, overdue).",
)  # fmt: skip
def list_invoices(call: Call) -> InvoicePage:
    q = call.query
    rows = of_app().invoices.list(
        state=q.state, customer_id=q.customer_id, order_id=q.order_id, bucket=q.bucket,
        limit=q.limit, offset=q.offset,
    )  # fmt: skip
    items = [invoice_out(r.invoice, r.state) for r in rows]
    return InvoicePage(items=items, total=_count(q), limit=q.limit, offset=q.offset)


@operation(
    "GET", "/invoices/buckets", summary="Count and amount per bucket", tag="invoices",
    rule=ANY_USER, response=BucketsOut,
    description="Blue invoices only; an overdue invoice counts in issued and in problem.",
)  # fmt: skip
def invoice_buckets(call: Call) -> BucketsOut:
    return buckets_out(of_app().invoices.buckets())


@operation(
    "GET", "/invoices/{invoice_id}", summary="Read an invoice", tag="invoices",
    rule=ANY_USER, response=InvoiceOut,
)  # fmt: skip
def get_invoice(call: Call, invoice_id: int) -> InvoiceOut:
    service = of_app().invoices
    invoice = service.get(invoice_id)
    state = "issued"  # red invoices have no lifecycle of their own
    if invoice.instance_id is not None:
        with service.app.engine.session_factory() as s:
            stmt = select(instances.c.state).where(instances.c.id == invoice.instance_id)
            state = str(s.scalar(stmt))
    return invoice_out(invoice, state)


@operation(
    "POST", "/invoices/{invoice_id}/payments", summary="Record a payment", tag="invoices",
    rule=FINANCE, body=PaymentIn, response=PaymentOut, status=201, errors=(400, 403, 422),
    description="Against an issued blue invoice, at most the outstanding amount; a bank "
    "`reference` is recorded once (422 on reference when seen before).",
)  # fmt: skip
def record_payment(call: Call, invoice_id: int) -> Result:
    b = call.body
    payment = of_app().invoices.record_payment(
        invoice_id, b.amount, b.paid_on, call.actor, reference=b.reference,
        method=b.method.strip(), note=b.note,
    )  # fmt: skip
    return Result(payment_out(payment), headers={"Location": f"/api/v1/invoices/{invoice_id}"})
