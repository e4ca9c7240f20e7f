"""Invoices (blue and red), their lines, the gapless number counters, payments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from order_flow.store.base import QTY, RATE, Base
from order_flow.store.types import utcnow

#: Issued blue invoices not (yet) settled: what the receivables reports read.
OPEN_PREDICATE = "kind = 'blue' AND number IS NOT NULL AND payment_status <> 'paid'"
ISSUED_BLUE = "kind = 'blue' AND issued_at IS NOT NULL"


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("series", "number", name="uq_invoices_series_number"),
        UniqueConstraint("order_id", "kind", "part", "red_seq", name="uq_invoices_order_part"),
        Index("ix_invoices_due", "payment_status", "due_date"),
        # Receivables (services/reports_invoices): issued blue invoices not settled,
        # and the red letters by the invoice they reverse, with their amounts.
        Index(
            "ix_invoices_open",
            "id",
            postgresql_include=["order_id", "total_gross", "due_date", "issued_at"],
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        # Cycle time: an order's issued blue invoices by issue time.
        Index(
            "ix_invoices_first_issue",
            "order_id",
            "issued_at",
            postgresql_where=text(ISSUED_BLUE),
            sqlite_where=text(ISSUED_BLUE),
        ),
        Index(
            "ix_invoices_red",
            "original_id",
            postgresql_include=["total_gross"],
            postgresql_where=text("kind = 'red'"),
            sqlite_where=text("kind = 'red'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_instances.id"), index=True)
    #: A copy of the instance's state (engine.core.StateMirror); NULL on red letters.
    state: Mapped[str | None] = mapped_column(String(64))
    #: Which piece of the order's split this is (1..n); with the unique key above a
    #: redelivered generation step cannot create a second invoice for the same piece.
    part: Mapped[int] = mapped_column(Integer, default=1)
    #: "blue" or "red" (红字发票).
    kind: Mapped[str] = mapped_column(String(8), default="blue")
    red_seq: Mapped[int] = mapped_column(Integer, default=0)
    original_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    red_reason: Mapped[str | None] = mapped_column(String(32))
    invoice_type: Mapped[str] = mapped_column(String(16))
    #: Numbering series, e.g. "2026-special"; number is NULL until issued.
    series: Mapped[str | None] = mapped_column(String(32))
    number: Mapped[int | None] = mapped_column(Integer)
    buyer_name: Mapped[str] = mapped_column(String(100))
    buyer_tax_id: Mapped[str] = mapped_column(String(18), default="")
    buyer_address_phone: Mapped[str] = mapped_column(String(200), default="")
    buyer_bank_account: Mapped[str] = mapped_column(String(200), default="")
    total_net: Mapped[Decimal] = mapped_column()
    total_tax: Mapped[Decimal] = mapped_column()
    total_gross: Mapped[Decimal] = mapped_column()
    #: unpaid, partial, paid, overdue (computed from payments and the due date).
    payment_status: Mapped[str] = mapped_column(String(16), default="unpaid")
    due_date: Mapped[date | None] = mapped_column(Date)
    problem: Mapped[str | None] = mapped_column(Text)
    prepared_by: Mapped[str] = mapped_column(String(64), default="system")
    issued_at: Mapped[datetime | None] = mapped_column()
    pdf_path: Mapped[str | None] = mapped_column(String(255))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[InvoiceLine]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="InvoiceLine.line_no"
    )

    @property
    def display_number(self) -> str:
        return "" if self.number is None else f"{self.series}-{self.number:08d}"


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    tax_code: Mapped[str] = mapped_column(String(19), default="")
    unit: Mapped[str] = mapped_column(String(16), default="")
    qty: Mapped[Decimal] = mapped_column(QTY)
    unit_price: Mapped[Decimal] = mapped_column(QTY)
    tax_rate: Mapped[Decimal] = mapped_column(RATE)
    tax_label: Mapped[str] = mapped_column(String(16), default="")
    net: Mapped[Decimal] = mapped_column()
    tax: Mapped[Decimal] = mapped_column()
    gross: Mapped[Decimal] = mapped_column()


class InvoiceCounter(Base):
    """The next number of a series, locked and bumped in the issuing transaction."""

    __tablename__ = "invoice_counters"

    series: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_number: Mapped[int] = mapped_column(Integer, default=1)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # An invoice's payments with date and amount (receivables as of a day).
        Index("ix_payments_invoice_paid", "invoice_id", postgresql_include=["paid_on", "amount"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[Decimal] = mapped_column()
    paid_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16), default="transfer")
    #: The bank reference; unique so a payment imported twice is recorded once.
    reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
