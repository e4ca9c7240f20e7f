"""Response models of invoices, payments and tasks (see views.py for the conventions)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from order_flow.store.invoices import Invoice, Payment
from web.api.views import money, qty

# -- invoices -----------------------------------------------------------------------


class InvoiceLineOut(BaseModel):
    line_no: int
    order_line_id: int | None
    description: str
    tax_code: str
    unit: str
    qty: str
    unit_price: str
    tax_rate: str
    tax_label: str
    net: str
    tax: str
    gross: str


class InvoiceOut(BaseModel):
    id: int
    order_id: int
    kind: str = Field(description="blue, or red (红字, a credit note)")
    part: int
    red_seq: int
    original_id: int | None
    red_reason: str | None
    invoice_type: str
    state: str
    series: str | None
    number: str | None = Field(description="Given at issue; null for a draft")
    buyer_name: str
    buyer_tax_id: str
    buyer_address_phone: str
    buyer_bank_account: str
    total_net: str
    total_tax: str
    total_gross: str
    payment_status: str
    due_date: date | None
    problem: str | None
    prepared_by: str
    issued_at: datetime | None
    created_at: datetime | None
    lines: list[InvoiceLineOut]


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    total: int
    limit: int
    offset: int


def invoice_out(i: Invoice, state: str) -> InvoiceOut:
    lines = [
        InvoiceLineOut(
            line_no=x.line_no, order_line_id=x.order_line_id, description=x.description,
            tax_code=x.tax_code, unit=x.unit, qty=qty(x.qty), unit_price=qty(x.unit_price),
            tax_rate=qty(x.tax_rate), tax_label=x.tax_label, net=money(x.net),
            tax=money(x.tax), gross=money(x.gross),
        )
        for x in i.lines
    ]  # fmt: skip
    return InvoiceOut(
        id=i.id, order_id=i.order_id, kind=i.kind, part=i.part, red_seq=i.red_seq,
        original_id=i.original_id, red_reason=i.red_reason, invoice_type=i.invoice_type,
        state=state, series=i.series, number=i.display_number or None,
        buyer_name=i.buyer_name, buyer_tax_id=i.buyer_tax_id,
        buyer_address_phone=i.buyer_address_phone, buyer_bank_account=i.buyer_bank_account,
        total_net=money(i.total_net), total_tax=money(i.total_tax),
        total_gross=money(i.total_gross), payment_status=i.payment_status,
        due_date=i.due_date, problem=i.problem, prepared_by=i.prepared_by,
        issued_at=i.issued_at, created_at=i.created_at, lines=lines,
    )  # fmt: skip


class PaymentOut(BaseModel):
    id: int
    invoice_id: int
    amount: str
    paid_on: date
    method: str
    reference: str | None
    note: str
    recorded_by: str
    created_at: datetime | None


def payment_out(p: Payment) -> PaymentOut:
    return PaymentOut(
        id=p.id, invoice_id=p.invoice_id, amount=money(p.amount), paid_on=p.paid_on,
        method=p.method, reference=p.reference, note=p.note, recorded_by=p.recorded_by,
        created_at=p.created_at,
    )  # fmt: skip


class Bucket(BaseModel):
    count: int
    amount: str


class BucketsOut(BaseModel):
    """The clerk's three buckets (已开 / 待开 / 问题发票) of blue invoices."""

    pending: Bucket
    issued: Bucket
    problem: Bucket


def buckets_out(raw: dict[str, dict[str, Any]]) -> BucketsOut:
    def b(name: str) -> Bucket:
        row = raw.get(name, {})
        return Bucket(count=int(row.get("count", 0)), amount=money(row.get("amount")))

    return BucketsOut(pending=b("pending"), issued=b("issued"), problem=b("problem"))


# -- tasks --------------------------------------------------------------------------


class TaskOut(BaseModel):
    id: int
    instance_id: int
    state: str
    title: str
    status: str
    assignee_id: int | None
    priority: int
    due_at: datetime | None
    outcomes: dict[str, str]
    groups: list[str]
    created_at: datetime | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class TaskDoneOut(BaseModel):
    task_id: int
    instance_id: int
    trigger: str
    from_state: str
    to_state: str


class ClaimedOut(BaseModel):
    task_id: int
    assignee_id: int
