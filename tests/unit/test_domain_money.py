from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from order_flow.domain.money import (
    FEN,
    LineAmounts,
    Totals,
    line_amounts,
    round_money,
    round_price,
    round_qty,
    to_decimal,
)

D = Decimal


def test_to_decimal_accepts_strings_ints_and_decimals():
    assert to_decimal("1.10") == D("1.10")
    assert to_decimal(" 3 ") == D(3)
    assert to_decimal(7) == D(7)
    assert to_decimal(D("0.1")) == D("0.1")


def test_to_decimal_refuses_floats_with_type_error():
    with pytest.raises(TypeError, match="float"):
        to_decimal(0.1)  # type: ignore[arg-type]


def test_to_decimal_refuses_bools_and_garbage():
    with pytest.raises(TypeError):
        to_decimal(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_decimal("abc")
    with pytest.raises(ValueError):
        to_decimal("NaN")
    with pytest.raises(ValueError):
        to_decimal("Infinity")


@pytest.mark.parametrize(
    ("raw", "half_up", "bankers"),
    [
        ("2.345", "2.35", "2.34"),
        ("0.125", "0.13", "0.12"),
        ("1.005", "1.01", "1.00"),
        ("10.015", "10.02", "10.02"),
        ("-2.345", "-2.35", "-2.34"),
    ],
)
def test_round_money_rounds_half_up_where_bankers_rounding_would_not(raw, half_up, bankers):
    assert round_money(raw) == D(half_up)
    assert D(raw).quantize(FEN, rounding=ROUND_HALF_EVEN) == D(bankers)
    assert round(D(raw), 2) == D(bankers)  # Python's default is banker's rounding


def test_quantities_and_prices_keep_eight_decimals_rounded_half_up():
    assert round_qty("1.123456785") == D("1.12345679")
    assert round_price("0.000000005") == D("0.00000001")
    assert round_qty("2") == D("2.00000000")


EXCLUSIVE_CASES = [
    # qty, price, rate, net, tax, gross
    ("3", "33.335", "0.13", "100.01", "13.00", "113.01"),
    ("1", "100", "0.13", "100.00", "13.00", "113.00"),
    ("1", "0.35", "0.13", "0.35", "0.05", "0.40"),  # 0.0455 -> 0.05
    ("1", "10.50", "0.09", "10.50", "0.95", "11.45"),  # 0.945 -> 0.95, banker's: 0.94
    ("7", "1.5", "0.06", "10.50", "0.63", "11.13"),
    ("1", "0.50", "0.03", "0.50", "0.02", "0.52"),  # 0.015 -> 0.02, banker's: 0.02
    ("1", "2.50", "0.01", "2.50", "0.03", "2.53"),  # 0.025 -> 0.03, banker's: 0.02
    ("3", "0.335", "0", "1.01", "0.00", "1.01"),  # 1.005 -> 1.01
    ("2.5", "4.25", "0.13", "10.63", "1.38", "12.01"),  # 10.625 -> 10.63; 1.3819 -> 1.38
]


@pytest.mark.parametrize(("qty", "price", "rate", "net", "tax", "gross"), EXCLUSIVE_CASES)
def test_exclusive_line_rounds_net_then_tax_on_the_rounded_net(qty, price, rate, net, tax, gross):
    assert line_amounts(qty, price, rate, inclusive=False) == LineAmounts(D(net), D(tax), D(gross))


INCLUSIVE_CASES = [
    # qty, unit gross, rate, net, tax, gross
    ("1", "113", "0.13", "100.00", "13.00", "113.00"),
    ("1", "100", "0.13", "88.50", "11.50", "100.00"),  # 88.4956 -> 88.50
    ("1", "100", "0.09", "91.74", "8.26", "100.00"),  # 91.7431
    ("1", "100", "0.06", "94.34", "5.66", "100.00"),  # 94.3396
    ("1", "100", "0.03", "97.09", "2.91", "100.00"),  # 97.0874
    ("1", "100", "0.01", "99.01", "0.99", "100.00"),  # 99.0099
    ("1", "100", "0", "100.00", "0.00", "100.00"),
    ("3", "0.335", "0", "1.01", "0.00", "1.01"),  # gross 1.005 -> 1.01
    ("1", "1.07", "0.07", "1.00", "0.07", "1.07"),
    ("1", "2.09", "0.045", "2.00", "0.09", "2.09"),  # 2.09/1.045 = 2.0 exactly
]


@pytest.mark.parametrize(("qty", "price", "rate", "net", "tax", "gross"), INCLUSIVE_CASES)
def test_inclusive_line_rounds_gross_then_backs_out_net_and_tax_is_the_rest(
    qty, price, rate, net, tax, gross
):
    assert line_amounts(qty, price, rate, inclusive=True) == LineAmounts(D(net), D(tax), D(gross))


def test_inclusive_gross_rounds_half_up_at_the_half_fen_boundary():
    # qty x unit gross = 10.005 exactly: half up gives 10.01, banker's would give 10.00
    assert line_amounts("1", "10.005", "0", inclusive=True) == LineAmounts(
        D("10.01"), D("0.00"), D("10.01")
    )
    assert line_amounts("3", "3.335", "0.13", inclusive=True).gross == D("10.01")


def test_line_amounts_refuse_float_inputs():
    with pytest.raises(TypeError):
        line_amounts(1.0, "1", "0.13", False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        line_amounts("1", "1", 0.13, False)  # type: ignore[arg-type]


def test_line_amounts_refuse_a_rate_outside_zero_to_one():
    with pytest.raises(ValueError):
        line_amounts("1", "1", "13", False)
    with pytest.raises(ValueError):
        line_amounts("1", "1", "-0.01", False)


def test_document_totals_are_sums_of_rounded_lines_not_rounded_sums():
    lines = [line_amounts("1", "0.35", "0.13", False) for _ in range(3)]
    totals = Totals.sum(lines)
    assert totals == Totals(D("1.05"), D("0.15"), D("1.20"))
    # taxing the total instead would give round(1.05 x 0.13) = 0.14
    assert round_money(totals.net * D("0.13")) == D("0.14")


def test_totals_of_no_lines_are_zero_and_totals_add():
    assert Totals.sum([]) == Totals()
    t = Totals(D("1.00"), D("0.13"), D("1.13"))
    assert t + t == Totals(D("2.00"), D("0.26"), D("2.26"))
