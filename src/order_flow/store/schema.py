"""Every table, imported once so that ``Base.metadata`` is complete."""

from __future__ import annotations

from order_flow.store import catalog, customers, imports, invoices, models, orders
from order_flow.store.base import Base

__all__ = ["Base", "catalog", "customers", "imports", "invoices", "models", "orders"]

metadata = Base.metadata
