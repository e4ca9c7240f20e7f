"""Orders, their lines, and the customers' order templates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from order_flow.store.base import QTY, RATE, Base
from order_flow.store.types import utcnow

#: The lifecycle states in which an order counts as a sale (services/reports_base
#: SALES_STATES): the predicate of the sales reports' partial indexes (migration 0007).
SALES_STATES = ("approved", "completed", "closed")
SALES_PREDICATE = "state IN ({})".format(", ".join(f"'{s}'" for s in SALES_STATES))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_po", "customer_id", "customer_po"),
        Index("ix_orders_created_at", "created_at"),
        # The sales reports (services/reports_sales): the orders that are sales, by
        # creation time and by id, carrying what those reports add up (PostgreSQL
        # INCLUDE: read without visiting the table).
        Index(
            "ix_orders_sales",
            "created_at",
            postgresql_include=[
                "customer_id",
                "created_by",
                "total_net",
                "total_tax",
                "total_gross",
            ],
            postgresql_where=text(SALES_PREDICATE),
            sqlite_where=text(SALES_PREDICATE),
        ),
        Index(
            "ix_orders_sales_id",
            "id",
            postgresql_include=["created_at", "customer_id"],
            postgresql_where=text(SALES_PREDICATE),
            sqlite_where=text(SALES_PREDICATE),
        ),
        # Cycle time: approved orders by id with their milestones (reports_ops).
        Index(
            "ix_orders_approved",
            "id",
            postgresql_include=["created_at", "submitted_at", "approved_at", "instance_id"],
            postgresql_where=text("approved_at IS NOT NULL"),
            sqlite_where=text("approved_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    #: The revision this one amends (N+1 points at N).
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    #: The workflow instance that runs this order; its state is the lifecycle state.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_instances.id"), index=True)
    #: A copy of the instance's state, kept by the engine in the same transaction
    #: (engine.core.StateMirror): the reports read it without joining the instances.
    state: Mapped[str | None] = mapped_column(String(64))
    #: When the order was first submitted (the engine, with the state: StateMirror).
    submitted_at: Mapped[datetime | None] = mapped_column()
    #: "exclusive" (prices without VAT) or "inclusive".
    pricing: Mapped[str] = mapped_column(String(16), default="exclusive")
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    promised_date: Mapped[date | None] = mapped_column(Date)
    customer_po: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
    special: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Groups that must sign off a special order (warehouse, production, logistics).
    signoff_groups: Mapped[list[str]] = mapped_column(default=list)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("order_templates.id"))
    copied_from_id: Mapped[int | None] = mapped_column(Integer)
    hold_reason: Mapped[str | None] = mapped_column(String(32))
    hold_detail: Mapped[str | None] = mapped_column(Text)
    # Totals are sums of the rounded lines, kept with the (then frozen) document.
    total_net: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total_tax: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total_gross: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column()
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)

    lines: Mapped[list[OrderLine]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="OrderLine.line_no"
    )

    __mapper_args__ = {"version_id_col": version}


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no", name="uq_order_lines_order_line"),
        # An order's lines by product, with the amounts: the sales reports merge them
        # with the sales orders by id without visiting the table.
        Index(
            "ix_order_lines_order_product",
            "order_id",
            "product_id",
            postgresql_include=["qty", "net", "tax", "gross", "tax_rate"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    description: Mapped[str] = mapped_column(String(200))
    qty: Mapped[Decimal] = mapped_column(QTY)
    unit_price: Mapped[Decimal] = mapped_column(QTY)
    tax_category: Mapped[str] = mapped_column(String(32))
    tax_rate: Mapped[Decimal] = mapped_column(RATE)
    net: Mapped[Decimal] = mapped_column()
    tax: Mapped[Decimal] = mapped_column()
    gross: Mapped[Decimal] = mapped_column()
    qty_reserved: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))
    qty_delivered: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))
    qty_invoiced: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))


class OrderTemplate(Base):
    """A customer's usual order; orders made from one skip double review by default."""

    __tablename__ = "order_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    pricing: Mapped[str] = mapped_column(String(16), default="exclusive")
    #: [{"product_id": 1, "qty": "10", "unit_price": "12.50" | null}, ...]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
