"""Response models and the functions that build them from stored rows.

Amounts and quantities are text (money with 2 decimals, quantities without
trailing zeros), so a JSON client never sees a float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from order_flow.engine.why import WhyReport
from order_flow.services.order_input import Progress
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.orders import Order

_FEN = Decimal("0.01")


def money(value: Decimal | int | str | None) -> str:
    return str(Decimal(str(value if value is not None else 0)).quantize(_FEN))


def qty(value: Decimal | int | str | None) -> str:
    """10.00000000 -> "10", 2.50000000 -> "2.5" (the same text on SQLite and PostgreSQL)."""
    d = Decimal(str(value if value is not None else 0))
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "") else text


# -- errors (documented in OpenAPI) -------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description='The field, like "lines[0].qty"; "body" for the whole body')
    message: str


class FieldErrorsOut(BaseModel):
    errors: list[FieldError]


class ProblemOut(BaseModel):
    error: str = Field(description="A short code: not_found, conflict, forbidden...")
    message: str


# -- customers and products ---------------------------------------------------------


class ContactOut(BaseModel):
    name: str
    phone: str
    email: str
    role: str


class CustomerOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    invoice_type: str
    tax_id: str | None
    address: str
    phone: str
    bank: str
    account: str
    email: str
    credit_limit: str
    stock_policy: str
    blocked: bool
    locale: str
    notify_by_email: bool
    payment_days: int
    contacts: list[ContactOut]
    created_at: datetime | None
    version: int


class CustomerCreatedOut(CustomerOut):
    warnings: list[str] = Field(description="Similar existing customers (a possible duplicate)")


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    total: int
    limit: int
    offset: int


def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(
        id=c.id, code=c.code, name=c.name, kind=c.kind, invoice_type=c.invoice_type,
        tax_id=c.tax_id, address=c.address, phone=c.phone, bank=c.bank, account=c.account,
        email=c.email, credit_limit=money(c.credit_limit), stock_policy=c.stock_policy,
        blocked=c.blocked, locale=c.locale, notify_by_email=c.notify_by_email,
        payment_days=c.payment_days, created_at=c.created_at, version=c.version,
        contacts=[ContactOut(name=x.name, phone=x.phone, email=x.email, role=x.role)
                  for x in c.contacts],
    )  # fmt: skip


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    unit: str
    tax_code: str
    tax_category: str
    price: str
    price_includes_tax: bool
    on_hand: str
    reserved: str
    available: str
    active: bool
    created_at: datetime | None


class ProductPage(BaseModel):
    items: list[ProductOut]
    total: int
    limit: int
    offset: int


def product_out(p: Product) -> ProductOut:
    return ProductOut(
        id=p.id, sku=p.sku, name=p.name, unit=p.unit, tax_code=p.tax_code,
        tax_category=p.tax_category, price=qty(p.price), price_includes_tax=p.price_includes_tax,
        on_hand=qty(p.on_hand), reserved=qty(p.reserved), available=qty(p.on_hand - p.reserved),
        active=p.active, created_at=p.created_at,
    )  # fmt: skip


# -- orders -------------------------------------------------------------------------


class OrderLineOut(BaseModel):
    id: int
    line_no: int
    product_id: int
    description: str
    qty: str
    unit_price: str
    tax_category: str
    tax_rate: str
    net: str
    tax: str
    gross: str
    qty_reserved: str
    qty_delivered: str
    qty_invoiced: str


class OrderOut(BaseModel):
    id: int
    number: str
    revision: int
    previous_id: int | None
    customer_id: int
    state: str = Field(description="The lifecycle state (draft, submitted, on_hold, ...)")
    pricing: str
    priority: str
    promised_date: date | None
    customer_po: str | None
    notes: str
    special: bool
    signoff_groups: list[str]
    hold_reason: str | None
    hold_detail: str | None
    total_net: str
    total_tax: str
    total_gross: str
    delivered_pct: str
    billed_pct: str
    created_by: str
    created_at: datetime | None
    approved_at: datetime | None
    version: int
    lines: list[OrderLineOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


def order_out(o: Order, state: str, progress: Progress) -> OrderOut:
    lines = [
        OrderLineOut(
            id=ln.id, line_no=ln.line_no, product_id=ln.product_id, description=ln.description,
            qty=qty(ln.qty), unit_price=qty(ln.unit_price), tax_category=ln.tax_category,
            tax_rate=qty(ln.tax_rate), net=money(ln.net), tax=money(ln.tax),
            gross=money(ln.gross), qty_reserved=qty(ln.qty_reserved),
            qty_delivered=qty(ln.qty_delivered), qty_invoiced=qty(ln.qty_invoiced),
        )
        for ln in o.lines
    ]  # fmt: skip
    return OrderOut(
        id=o.id, number=o.number, revision=o.revision, previous_id=o.previous_id,
        customer_id=o.customer_id, state=state, pricing=o.pricing, priority=o.priority,
        promised_date=o.promised_date, customer_po=o.customer_po, notes=o.notes,
        special=o.special, signoff_groups=list(o.signoff_groups or []),
        hold_reason=o.hold_reason, hold_detail=o.hold_detail, total_net=money(o.total_net),
        total_tax=money(o.total_tax), total_gross=money(o.total_gross),
        delivered_pct=money(progress.delivered_pct), billed_pct=money(progress.billed_pct),
        created_by=o.created_by, created_at=o.created_at, approved_at=o.approved_at,
        version=o.version, lines=lines,
    )  # fmt: skip


class WhyTask(BaseModel):
    id: int
    title: str
    assignee_id: int | None
    due_at: datetime | None
    outcomes: dict[str, str]


class WhyJob(BaseModel):
    id: int
    step: str
    status: str
    attempts: int
    last_error: str | None


class WhyMove(BaseModel):
    trigger: str
    dest: str
    actors: list[str]
    failing_guards: list[str]
    ready: bool


class WhyOut(BaseModel):
    """Why the order is where it is: open tasks, pending jobs, blocked moves."""

    instance_id: int
    workflow: str
    version: int
    state: str
    state_label: str
    final: bool
    summary: str
    tasks: list[WhyTask]
    jobs: list[WhyJob]
    moves: list[WhyMove]


def why_out(r: WhyReport) -> WhyOut:
    return WhyOut(
        instance_id=r.instance_id, workflow=r.workflow, version=r.version, state=r.state,
        state_label=r.state_label, final=r.final, summary=r.summary(),
        tasks=[WhyTask(id=t.id, title=t.title, assignee_id=t.assignee_id, due_at=t.due_at,
                       outcomes={str(k): str(v) for k, v in t.outcomes.items()})
               for t in r.tasks],
        jobs=[WhyJob(id=j.id, step=j.step, status=j.status, attempts=j.attempts,
                     last_error=j.last_error) for j in r.jobs],
        moves=[WhyMove(trigger=m.trigger, dest=m.dest, actors=list(m.actors),
                       failing_guards=list(m.failing_guards), ready=m.ready) for m in r.moves],
    )  # fmt: skip
