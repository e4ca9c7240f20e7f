"""Status and category enums of the domain; all are ``StrEnum`` so they store as text."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    """Order priority; ``rank`` sorts urgent first (0) and low last (3)."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}


class InvoiceType(StrEnum):
    """专票 needs the buyer's full tax details; 普票 to an individual may omit the tax ID."""

    SPECIAL = "special"
    ORDINARY = "ordinary"

    @property
    def label_zh(self) -> str:
        return "专票" if self is InvoiceType.SPECIAL else "普票"


class StockPolicy(StrEnum):
    """Per customer: ship what is available (partial) or wait for everything (complete)."""

    PARTIAL = "partial"
    COMPLETE = "complete"


class HoldReason(StrEnum):
    """Why an order sits in on_hold."""

    DATA = "DATA"
    DUPLICATE = "DUPLICATE"
    CREDIT = "CREDIT"
    STOCK_SHORT = "STOCK_SHORT"
    CUSTOMER_BLOCKED = "CUSTOMER_BLOCKED"
    SPECIAL = "SPECIAL"


class RedReason(StrEnum):
    """Reason for a red-letter (红字) invoice; the value is the Chinese term printed."""

    WRONG_INVOICE = "开票有误"
    GOODS_RETURNED = "销货退回"
    SERVICE_TERMINATED = "服务终止"
    SALES_ALLOWANCE = "销售折让"


class TaxKind(StrEnum):
    """A rate is a plain percentage, or one of the two zero-arithmetic markers."""

    STANDARD = "standard"
    EXEMPT = "exempt"  # 免税
    NOT_TAXABLE = "not_taxable"  # 不征税


class PaymentStatus(StrEnum):
    """Computed from the amounts and the due date; overdue wins over unpaid/partial."""

    UNPAID = "unpaid"
    PARTIAL = "partial"
    PAID = "paid"
    OVERDUE = "overdue"
