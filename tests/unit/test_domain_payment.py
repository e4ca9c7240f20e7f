from datetime import date
from decimal import Decimal

from order_flow.domain.enums import (
    HoldReason,
    InvoiceType,
    Priority,
    RedReason,
    StockPolicy,
    TaxKind,
)
from order_flow.domain.payment import PaymentStatus, outstanding, payment_status

DUE = date(2025, 3, 31)


def test_nothing_paid_before_the_due_date_is_unpaid():
    assert payment_status("100.00", "0", DUE, date(2025, 3, 1)) is PaymentStatus.UNPAID


def test_some_paid_is_partial():
    assert payment_status("100.00", "40.00", DUE, DUE) is PaymentStatus.PARTIAL


def test_all_paid_is_paid_even_after_the_due_date():
    assert payment_status("100.00", "100.00", DUE, date(2025, 5, 1)) is PaymentStatus.PAID
    assert payment_status("100.00", "120.00", DUE, date(2025, 5, 1)) is PaymentStatus.PAID


def test_balance_after_the_due_date_is_overdue_whether_partly_paid_or_not():
    after = date(2025, 4, 1)
    assert payment_status("100.00", "0", DUE, after) is PaymentStatus.OVERDUE
    assert payment_status("100.00", "99.99", DUE, after) is PaymentStatus.OVERDUE


def test_without_a_due_date_nothing_is_overdue():
    assert payment_status("100.00", "0", None, date(2030, 1, 1)) is PaymentStatus.UNPAID


def test_a_zero_total_is_paid():
    assert payment_status("0", "0", DUE, date(2030, 1, 1)) is PaymentStatus.PAID


def test_outstanding_never_goes_below_zero():
    assert outstanding("100.00", "30.00") == Decimal("70.00")
    assert outstanding("100.00", "130.00") == Decimal("0.00")


def test_statuses_are_strings():
    assert PaymentStatus.OVERDUE == "overdue"
    assert f"{PaymentStatus.PARTIAL}" == "partial"


def test_priorities_rank_urgent_first():
    assert [p.rank for p in Priority] == [0, 1, 2, 3]
    assert sorted([Priority.LOW, Priority.URGENT, Priority.NORMAL], key=lambda p: p.rank) == [
        Priority.URGENT,
        Priority.NORMAL,
        Priority.LOW,
    ]
    assert Priority("high") is Priority.HIGH


def test_other_enums_hold_the_domain_values():
    assert InvoiceType.SPECIAL.label_zh == "专票"
    assert InvoiceType.ORDINARY.label_zh == "普票"
    assert {s.value for s in StockPolicy} == {"partial", "complete"}
    assert {h.value for h in HoldReason} == {
        "DATA", "DUPLICATE", "CREDIT", "STOCK_SHORT", "CUSTOMER_BLOCKED", "SPECIAL"
    }
    assert RedReason("销货退回") is RedReason.GOODS_RETURNED
    assert [r.name for r in RedReason] == [
        "WRONG_INVOICE", "GOODS_RETURNED", "SERVICE_TERMINATED", "SALES_ALLOWANCE"
    ]
    assert TaxKind.EXEMPT == "exempt"
