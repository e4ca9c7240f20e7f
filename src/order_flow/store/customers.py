"""Customers, their contacts, and the communication log."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from order_flow.store.base import Base
from order_flow.store.types import utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: Folded name for the fuzzy duplicate warning (text.normalize_company_name).
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    #: Unified social credit code, or an individual's ID card number; unique when given.
    tax_id: Mapped[str | None] = mapped_column(String(18), unique=True)
    #: "company" or "individual".
    kind: Mapped[str] = mapped_column(String(16), default="company")
    #: "special" (专票) or "ordinary" (普票).
    invoice_type: Mapped[str] = mapped_column(String(16), default="ordinary")
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    bank: Mapped[str] = mapped_column(String(100), default="")
    account: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    credit_limit: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    #: "partial" or "complete".
    stock_policy: Mapped[str] = mapped_column(String(16), default="partial")
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Language of notifications: "zh_CN" or "en".
    locale: Mapped[str] = mapped_column(String(8), default="zh_CN")
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=True)
    payment_days: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    contacts: Mapped[list[Contact]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Contact.id"
    )

    __mapper_args__ = {"version_id_col": version}


class Contact(Base):
    __tablename__ = "customer_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(50), default="")


class Communication(Base):
    """One contact with a customer: a notification sent or a call a clerk recorded."""

    __tablename__ = "communications"
    __table_args__ = (Index("ix_communications_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    #: email, phone, wechat, visit, letter, other
    channel: Mapped[str] = mapped_column(String(16))
    #: "in" (the customer reached us) or "out".
    direction: Mapped[str] = mapped_column(String(3))
    summary: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    #: For sent notifications: the job key, so a redelivered step logs once.
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
