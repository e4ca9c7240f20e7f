"""Products, prices, VAT rates, stock and reservations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from order_flow.store.base import QTY, RATE, Base
from order_flow.store.types import utcnow


class TaxRateRow(Base):
    """The effective-dated VAT rate table (domain.tax.RateTable is built from it)."""

    __tablename__ = "tax_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    #: A fraction (0.13); NULL for the exempt and not-taxable markers.
    rate: Mapped[Decimal | None] = mapped_column(RATE)
    #: standard, exempt, not_taxable
    kind: Mapped[str] = mapped_column(String(16), default="standard")
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16), default="个")
    #: 税收分类编码, 19 digits; an empty code makes invoicing fail into an incident.
    tax_code: Mapped[str] = mapped_column(String(19), default="")
    #: Category in the rate table (general_13, small_scale_3, exempt, ...).
    tax_category: Mapped[str] = mapped_column(String(32), default="general_13")
    #: List price, tax-exclusive unless ``price_includes_tax``.
    price: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))
    price_includes_tax: Mapped[bool] = mapped_column(Boolean, default=False)
    on_hand: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))
    reserved: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


class PriceListItem(Base):
    """A customer-specific or list price that overrides the product's list price."""

    __tablename__ = "price_list_items"
    __table_args__ = (Index("ix_price_list_items_lookup", "price_list", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    price_list: Mapped[str] = mapped_column(String(32))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    unit_price: Mapped[Decimal] = mapped_column(QTY)
    min_qty: Mapped[Decimal] = mapped_column(QTY, default=Decimal("0"))
    effective_from: Mapped[date] = mapped_column(Date)


class Reservation(Base):
    """Stock held for an order line; released on cancel or close, or when stale."""

    __tablename__ = "stock_reservations"
    __table_args__ = (Index("ix_stock_reservations_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    qty: Mapped[Decimal] = mapped_column(QTY)
    #: active, released, consumed
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
