"""Pure helpers of the invoice service: red-amount allocation and the pre-issue checks."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from order_flow.services.invoicing import allocate, issue_problem
from order_flow.store.invoices import Invoice, InvoiceLine

D = Decimal
CODE = "1090101010000000000"
fen = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n) / 100)


def test_an_amount_is_shared_in_proportion_to_the_weights_to_the_fen() -> None:
    assert allocate(D("100.00"), [D("226.00"), D("112.99")]) == [D("66.67"), D("33.33")]
    assert allocate(D("0.01"), [D("1.00"), D("1.00"), D("1.00")]) == [D("0.01"), D(0), D(0)]


def test_the_whole_amount_goes_line_by_line_to_the_weights() -> None:
    weights = [D("3.33"), D("0.01"), D("96.66")]
    assert allocate(D("100.00"), weights) == weights


@given(st.lists(fen, min_size=1, max_size=8), st.data())
def test_shares_add_up_to_the_amount_and_never_exceed_a_weight(
    weights: list[Decimal], data: st.DataObject
) -> None:
    total = sum(weights, D(0))
    amount = data.draw(st.integers(min_value=0, max_value=int(total * 100))) * D("0.01")
    shares = allocate(amount, weights)
    assert sum(shares, D(0)) == amount
    assert all(D(0) <= s <= w for s, w in zip(shares, weights, strict=True))


def invoice(invoice_type: str = "ordinary", **line: object) -> Invoice:
    values: dict[str, object] = dict(
        line_no=1,
        description="螺丝",
        tax_code=CODE,
        qty=D(1),
        unit_price=D(100),
        tax_rate=D("0.13"),
        net=D("100.00"),
        tax=D("13.00"),
        gross=D("113.00"),
    )
    values.update(line)
    inv = Invoice(
        invoice_type=invoice_type,
        buyer_name="某某有限公司",
        buyer_tax_id="",
        buyer_address_phone="",
        buyer_bank_account="",
    )
    inv.lines = [InvoiceLine(**values)]
    inv.total_net, inv.total_tax, inv.total_gross = D("100.00"), D("13.00"), D("113.00")
    return inv


def test_a_clean_ordinary_invoice_has_no_problem() -> None:
    assert issue_problem(invoice(), D("0.06")) is None


def test_a_missing_or_malformed_tax_code_names_the_product() -> None:
    assert issue_problem(invoice(tax_code=""), D("0.06")) == "商品 螺丝 缺少税收分类编码"
    assert "不是19位数字" in (issue_problem(invoice(tax_code="12345"), D("0.06")) or "")


def test_line_tax_within_the_tolerance_passes_and_beyond_it_is_a_problem() -> None:
    six_fen_off = invoice(tax=D("13.06"), gross=D("113.06"))
    six_fen_off.total_tax, six_fen_off.total_gross = D("13.06"), D("113.06")
    assert issue_problem(six_fen_off, D("0.06")) is None
    assert "超出容差" in (issue_problem(six_fen_off, D("0.05")) or "")


def test_totals_that_differ_from_the_lines_are_a_problem() -> None:
    inv = invoice()
    inv.total_gross = D("113.01")
    assert issue_problem(inv, D("0.06")) == "发票合计与明细行之和不符"


def test_a_special_invoice_needs_every_buyer_field() -> None:
    assert issue_problem(invoice("special"), D("0.06")) == (
        "购买方信息不全: 缺少纳税人识别号、地址电话、开户行及账号"
    )
