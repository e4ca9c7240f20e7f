"""The order service's pure helpers: parsing a body, numbers, request hashes, progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_flow.config import Settings
from order_flow.services.order_input import (
    order_number,
    parse_order,
    progress_of,
    request_hash,
    revision_number,
)

TODAY = date(2026, 3, 2)
SETTINGS = Settings()


def body(**extra: Any) -> dict[str, Any]:
    return {"customer_id": 1, "lines": [{"product_id": 2, "qty": "1"}], **extra}


def test_a_minimal_body_gets_the_defaults() -> None:
    parsed = parse_order(body(), TODAY, SETTINGS)
    assert parsed.errors == {}
    assert (parsed.pricing, parsed.priority, parsed.special, parsed.customer_po) == (
        "exclusive",
        "normal",
        False,
        None,
    )
    assert parsed.lines[0].qty == Decimal("1")


def test_a_float_quantity_is_refused_so_money_never_passes_through_binary_floats() -> None:
    parsed = parse_order(body(lines=[{"product_id": 2, "qty": 0.1}]), TODAY, SETTINGS)
    assert "never a float" in parsed.errors["lines[0].qty"]


@pytest.mark.parametrize(
    ("qty", "message"),
    [
        ("0", "greater than 0"),
        ("-1", "greater than 0"),
        ("abc", "a number"),
        ("NaN", "a number"),
        ("0.000000001", "8 decimal places"),
        ("10000000", "at most"),
        (None, "required"),
    ],
)
def test_a_bad_quantity_is_named_by_its_line(qty: object, message: str) -> None:
    lines = [{"product_id": 2, "qty": "1"}, {"product_id": 2, "qty": qty}]
    parsed = parse_order(body(lines=lines), TODAY, SETTINGS)
    assert list(parsed.errors) == ["lines[1].qty"]
    assert message in parsed.errors["lines[1].qty"]


def test_trailing_zeros_do_not_count_as_decimal_places() -> None:
    parsed = parse_order(body(lines=[{"product_id": 2, "qty": "1.5000000000"}]), TODAY, SETTINGS)
    assert parsed.errors == {}


def test_a_special_order_needs_sign_off_groups_from_the_known_ones() -> None:
    assert "signoff_groups" in parse_order(body(special=True), TODAY, SETTINGS).errors
    wrong = parse_order(body(special=True, signoff_groups=["sales"]), TODAY, SETTINGS)
    assert "signoff_groups" in wrong.errors
    ok = parse_order(body(special=True, signoff_groups=["warehouse"]), TODAY, SETTINGS)
    assert ok.errors == {} and ok.signoff_groups == ("warehouse",)


def test_a_promised_date_today_is_fine_and_yesterday_is_not() -> None:
    assert parse_order(body(promised_date="2026-03-02"), TODAY, SETTINGS).errors == {}
    late = parse_order(body(promised_date="2026-03-01"), TODAY, SETTINGS)
    assert late.errors == {"promised_date": "must not be in the past"}
    assert "promised_date" in parse_order(body(promised_date="3/1"), TODAY, SETTINGS).errors


def test_every_problem_is_reported_at_once() -> None:
    parsed = parse_order({"pricing": "x", "priority": "y", "lines": "z"}, TODAY, SETTINGS)
    assert set(parsed.errors) == {"customer_id", "pricing", "priority", "lines"}


def test_numbers_carry_the_date_the_sequence_and_the_revision() -> None:
    assert order_number(date(2026, 1, 5), 42) == "SO20260105-000042"
    assert revision_number("SO20260105-000042", 2) == "SO20260105-000042-R2"
    assert revision_number("SO20260105-000042-R2", 3) == "SO20260105-000042-R3"


def test_the_request_hash_ignores_key_order_but_not_values() -> None:
    a = {"customer_id": 1, "lines": [{"qty": "1", "product_id": 2}]}
    b = {"lines": [{"product_id": 2, "qty": "1"}], "customer_id": 1}
    assert request_hash(a) == request_hash(b)
    assert request_hash(a) != request_hash({**a, "customer_id": 2})


@dataclass
class Line:
    qty: Decimal
    qty_delivered: Decimal = Decimal("0")
    qty_invoiced: Decimal = Decimal("0")


def test_progress_is_the_mean_of_the_lines_capped_at_each_line() -> None:
    lines = [
        Line(Decimal("10"), Decimal("5"), Decimal("10")),
        Line(Decimal("3"), Decimal("4"), Decimal("0")),  # over-delivered counts as 100 %
    ]
    progress = progress_of(lines)
    assert (progress.delivered_pct, progress.billed_pct) == (Decimal("75.00"), Decimal("50.00"))
    assert progress_of([]).delivered_pct == Decimal("0.00")


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2),
            st.decimals(min_value=Decimal("0"), max_value=Decimal("2000"), places=2),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_progress_stays_between_0_and_100(pairs: list[tuple[Decimal, Decimal]]) -> None:
    progress = progress_of([Line(q, d, d) for q, d in pairs])
    assert Decimal("0") <= progress.delivered_pct <= Decimal("100")
    assert progress.delivered_pct == progress.billed_pct
