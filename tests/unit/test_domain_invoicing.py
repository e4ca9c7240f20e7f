from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_flow.domain.invoicing import (
    TAX_TOLERANCE,
    InvoiceLineDraft,
    check_red_amount,
    plan_red,
    red_lines,
    split_line,
    split_lines,
    tax_deviation,
)
from order_flow.domain.money import LineAmounts, Totals, line_amounts
from order_flow.domain.tax import default_rate_table

D = Decimal
RATES = sorted({r.arithmetic_rate for r in default_rate_table() if r.applies_on(date(2025, 1, 1))})


def line(qty: str, price: str, rate: str = "0.13", inclusive: bool = False, id_: int = 1):
    return InvoiceLineDraft.build(id_, f"item {id_}", qty, price, rate, inclusive)


def test_lines_under_the_limit_are_packed_in_order_under_the_amount_and_line_cap():
    lines = [line("1", "40", id_=i) for i in range(5)]
    invoices = split_lines(lines, D("100"), max_lines=8)
    assert [[x.order_line_id for x in inv] for inv in invoices] == [[0, 1], [2, 3], [4]]
    invoices = split_lines(lines, D("1000"), max_lines=2)
    assert [len(inv) for inv in invoices] == [2, 2, 1]


def test_no_lines_make_no_invoices():
    assert split_lines([], D("100"), 8) == []


def test_a_line_over_the_limit_is_split_by_quantity_with_the_remainder_last():
    big = line("25", "10000", "0.13")  # net 250,000 against a 100,000 limit
    invoices = split_lines([big], D("100000"), 8)
    assert [[(x.qty, x.net, x.tax) for x in inv] for inv in invoices] == [
        [(D(10), D("100000.00"), D("13000.00"))],
        [(D(10), D("100000.00"), D("13000.00"))],
        [(D(5), D("50000.00"), D("6500.00"))],
    ]


def test_split_pieces_add_up_to_the_line_to_the_fen_when_rounding_drifts():
    odd = line("150", "0.0334", "0.13")  # each 30 units round down: 1.002 -> 1.00
    pieces = split_line(odd, D("1.00"))
    assert Totals.sum(pieces) == Totals(odd.net, odd.tax, odd.gross)
    assert sum(p.qty for p in pieces) == odd.qty
    assert all(p.net <= D("1.00") and p.qty > 0 for p in pieces)
    assert all(tax_deviation(p) <= TAX_TOLERANCE for p in pieces)


def test_remainder_tax_stays_within_tolerance_when_forty_pieces_drift():
    big = line("4000", "1000.004", "0.13")
    # 99 units fit, but 40 x 99 leaves a remainder whose tax is 0.08 off round(net x 13 %)
    pieces = split_line(big, D("100000"))
    assert {p.qty for p in pieces[:-1]} == {D(98)}
    assert pieces[-1].qty == D(80)
    assert max(tax_deviation(p) for p in pieces) <= TAX_TOLERANCE
    assert Totals.sum(pieces) == Totals(big.net, big.tax, big.gross)


def test_tiny_pieces_fall_back_to_cutting_on_cumulative_amounts():
    tiny = line("1300.50", "0.01", "0")  # net 13.01; 10^-8 steps; limit 8 fen
    pieces = split_line(tiny, D("0.08"))
    assert Totals.sum(pieces) == Totals(tiny.net, tiny.tax, tiny.gross)
    assert sum(p.qty for p in pieces) == tiny.qty
    assert all(0 < p.net <= D("0.08") for p in pieces)


def test_a_line_needing_too_many_invoices_is_refused():
    with pytest.raises(ValueError, match="over 1000 invoices"):
        split_line(line("1001", "1"), D("1"))


def test_a_fractional_quantity_is_split_on_eight_decimal_places():
    frac = line("2.5", "1000000", "0.13", inclusive=True)
    pieces = split_line(frac, D("1000000"))
    assert pieces[0].qty == D("1.13")  # gross 1,130,000.00 -> net exactly 1,000,000.00
    assert line_amounts("1.13000001", "1000000", "0.13", True).net > D("1000000")
    assert sum(p.qty for p in pieces) == D("2.5")
    assert Totals.sum(pieces) == Totals(frac.net, frac.tax, frac.gross)


def test_full_pieces_use_the_line_formula():
    big = line("7", "30", "0.06", inclusive=True)
    first = split_line(big, D("60"))[0]
    assert LineAmounts(first.net, first.tax, first.gross) == line_amounts(
        first.qty, D("30"), D("0.06"), True
    )


def test_two_pieces_of_one_line_never_share_an_invoice():
    invoices = split_lines([line("3", "60")], D("100"), 8)
    assert [len(inv) for inv in invoices] == [1, 1, 1]


def test_one_unit_over_the_limit_is_refused():
    with pytest.raises(ValueError, match="indivisible unit"):
        split_lines([line("2", "150")], D("100"), 8)


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_a_limit_that_is_not_positive_is_refused(limit):
    with pytest.raises(ValueError, match="positive"):
        split_lines([line("1", "1")], D(limit), 8)


def test_a_line_cap_below_one_and_negative_lines_are_refused():
    with pytest.raises(ValueError):
        split_lines([line("1", "1")], D("100"), 0)
    with pytest.raises(ValueError, match="negative"):
        split_lines([line("-1", "10")], D("100"), 8)


def test_a_float_limit_is_refused():
    with pytest.raises(TypeError):
        split_lines([line("1", "1")], 100.0, 8)  # type: ignore[arg-type]


def decimals(max_int: int, max_places: int) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda n, places: D(n).scaleb(-places),
        st.integers(min_value=1, max_value=max_int),
        st.integers(min_value=0, max_value=max_places),
    )


drafts = st.builds(
    lambda i, q, p, r, inc: InvoiceLineDraft.build(i, "x", q, p, r, inc),
    st.integers(0, 10**6),
    st.one_of(st.integers(1, 5000).map(D), decimals(10**7, 8)),
    decimals(10**8, 8),
    st.sampled_from(RATES),
    st.booleans(),
)


def _unit_over_limit(x: InvoiceLineDraft, limit: Decimal) -> bool:
    step = D(1) if x.qty == x.qty.to_integral_value() else D("0.00000001")
    return x.net > limit and line_amounts(step, x.unit_price, x.rate, x.inclusive).net > limit


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(drafts, max_size=12),
    raw_limit=st.integers(1, 10**8).map(lambda n: D(n) / 100),
    cap=st.integers(1, 8),
)
def test_split_invoices_always_sum_to_the_order_within_limit_and_cap(lines, raw_limit, cap):
    # keep the piece count sane: at most ~200 pieces per line
    biggest = max((x.net for x in lines), default=D(0))
    limit = max(raw_limit, (biggest / 200).quantize(D("0.01")) + D("0.01"))
    if any(_unit_over_limit(x, limit) for x in lines):
        with pytest.raises(ValueError, match="indivisible unit"):
            split_lines(lines, limit, cap)
        return
    invoices = split_lines(lines, limit, cap)
    pieces = [p for inv in invoices for p in inv]
    assert Totals.sum(pieces) == Totals.sum(lines)
    for inv in invoices:
        assert 1 <= len(inv) <= cap
        assert Totals.sum(inv).net <= limit
    for p in pieces:
        assert p.qty > 0 and p.net >= 0 and p.tax >= 0 and p.gross == p.net + p.tax
        assert tax_deviation(p) <= TAX_TOLERANCE
    for original in lines:
        split = split_line(original, limit)
        assert sum(p.qty for p in split) == original.qty
        assert Totals.sum(split) == Totals(original.net, original.tax, original.gross)


def test_red_amount_is_negative_and_within_the_unreversed_amount():
    assert check_red_amount(D("1130.00"), D("0"), D("130.00")) == D("-130.00")
    assert check_red_amount(D("1130.00"), D("1000.00"), D("130.00")) == D("-130.00")
    assert check_red_amount(D("1130.00"), D("-1000.00"), D("130.00")) == D("-130.00")
    plan = plan_red(D("1130.00"), D("1000.00"), D("130.00"))
    assert plan.fully_reversed and plan.unreversed_after == 0


@pytest.mark.parametrize(
    ("blue", "done", "requested"),
    [
        ("1130.00", "1000.00", "130.01"),  # more than unreversed
        ("1130.00", "0", "0"),
        ("1130.00", "0", "-10.00"),
        ("1130.00", "0", "10.001"),
        ("1130.00", "1200.00", "1.00"),
        ("0", "0", "1.00"),
    ],
)
def test_red_requests_outside_the_unreversed_amount_are_refused(blue, done, requested):
    with pytest.raises(ValueError):
        check_red_amount(D(blue), D(done), D(requested))


def test_full_red_reversal_negates_every_line_exactly():
    blue = [line("3", "33.335"), line("2", "99.99", "0.06", inclusive=True, id_=2)]
    red = red_lines(blue, ratio=D(1))
    for b, r in zip(blue, red, strict=True):
        assert (r.qty, r.net, r.tax, r.gross) == (-b.qty, -b.net, -b.tax, -b.gross)


def test_partial_red_by_amount_backs_out_net_and_tax():
    blue = [line("10", "100", "0.13")]  # 1000 + 130
    (red,) = red_lines(blue, amounts=[D("113.00")])
    assert (red.qty, red.net, red.tax, red.gross) == (D("-1"), D("-100.00"), D("-13.00"),
                                                      D("-113.00"))


def test_red_by_amount_over_the_unreversed_line_is_refused():
    blue = [line("1", "100")]
    done = [LineAmounts(D("50.00"), D("6.50"), D("56.50"))]
    with pytest.raises(ValueError, match="unreversed"):
        red_lines(blue, amounts=[D("56.51")], reversed_so_far=done)
    with pytest.raises(ValueError):
        red_lines(blue, ratio=D("1.01"))
    with pytest.raises(ValueError):
        red_lines(blue, ratio=D("0.5"), amounts=[D("1")])


def test_a_red_request_for_nothing_is_refused():
    with pytest.raises(ValueError, match="nothing"):
        red_lines([line("1", "100")], amounts=[D("0")])


@settings(max_examples=200, deadline=None)
@given(
    blue=st.lists(drafts, min_size=1, max_size=6),
    requests=st.lists(
        st.one_of(
            st.integers(1, 100).map(lambda n: D(n) / 100),  # a ratio
            st.lists(st.integers(0, 10**6), min_size=6, max_size=6),  # per-line fen
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_repeated_red_invoices_never_exceed_what_is_unreversed(blue, requests):
    blue = [replace(b, order_line_id=i) for i, b in enumerate(blue)]
    done = [LineAmounts(D(0), D(0), D(0)) for _ in blue]
    for request in requests:
        if isinstance(request, Decimal):
            kwargs: dict = {"ratio": request}
        else:  # per-line amounts, capped at the unreversed gross
            kwargs = {"amounts": [min(D(f) / 100, b.gross - d.gross)
                                  for f, b, d in zip(request, blue, done, strict=False)]}
        try:
            red = red_lines(blue, reversed_so_far=done, **kwargs)
        except ValueError as exc:
            assert "nothing" in str(exc)
            continue
        for r in red:
            assert r.qty <= 0 and r.net <= 0 and r.tax <= 0 and r.gross < 0
            assert r.gross == r.net + r.tax
            i = int(r.order_line_id)
            done[i] = LineAmounts(done[i].net - r.net, done[i].tax - r.tax,
                                  done[i].gross - r.gross)
        for d, b in zip(done, blue, strict=True):
            assert 0 <= d.net <= b.net and 0 <= d.tax <= b.tax and 0 <= d.gross <= b.gross
        reversed_total = sum(d.gross for d in done)
        assert reversed_total <= Totals.sum(blue).gross
