"""Bulk order intake: one row per import run, and the key that makes a PO import once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from order_flow.store.base import Base
from order_flow.store.types import JSONType, utcnow


class ImportBatch(Base):
    """One run of ``order-flow import orders``, an upload or an API batch."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The file name, or "api".
    source: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    #: The API's Idempotency-Key, with the hash of the body it came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_already: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    orders_created: Mapped[int] = mapped_column(Integer, default=0)
    #: The API's answer, replayed for a retry with the same Idempotency-Key.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class ImportKey(Base):
    """(customer, customer PO) of every imported order: the primary key makes a second
    import of the same PO fail at the database, whatever races (docs/operations.md)."""

    __tablename__ = "import_keys"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    customer_po: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
