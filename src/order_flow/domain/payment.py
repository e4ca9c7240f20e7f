"""Payment status, computed from amounts and the due date (a daily job stores it)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from order_flow.domain.enums import PaymentStatus
from order_flow.domain.money import Number, to_decimal

__all__ = ["PaymentStatus", "outstanding", "payment_status"]


def outstanding(total: Number, paid: Number) -> Decimal:
    """What is still owed, never below zero."""
    return max(to_decimal(total) - to_decimal(paid), Decimal("0.00"))


def payment_status(
    total: Number, paid: Number, due_date: date | None, today: date
) -> PaymentStatus:
    """unpaid / partial / paid, or overdue once ``today`` is past the due date with a balance.

    Nothing owed (paid >= total, including a zero total) is paid. The due date itself
    is not yet overdue.
    """
    t, p = to_decimal(total), to_decimal(paid)
    if p >= t:
        return PaymentStatus.PAID
    if due_date is not None and today > due_date:
        return PaymentStatus.OVERDUE
    return PaymentStatus.PARTIAL if p > 0 else PaymentStatus.UNPAID
