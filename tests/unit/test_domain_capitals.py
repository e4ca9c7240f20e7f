from decimal import Decimal

import pytest

from order_flow.domain.capitals import amount_in_capitals


@pytest.mark.parametrize(
    ("amount", "capitals"),
    [
        ("1234.56", "壹仟贰佰叁拾肆圆伍角陆分"),
        ("100", "壹佰圆整"),
        ("100.05", "壹佰圆零伍分"),
        ("0", "零圆整"),
        ("0.00", "零圆整"),
        ("10010.00", "壹万零壹拾圆整"),
        ("1", "壹圆整"),
        ("10", "壹拾圆整"),
        ("11", "壹拾壹圆整"),
        ("101", "壹佰零壹圆整"),
        ("1001", "壹仟零壹圆整"),
        ("1010", "壹仟零壹拾圆整"),
        ("1100", "壹仟壹佰圆整"),
        ("10000", "壹万圆整"),
        ("10001", "壹万零壹圆整"),
        ("10100", "壹万零壹佰圆整"),
        ("11000", "壹万壹仟圆整"),
        ("200000", "贰拾万圆整"),
        ("1000000", "壹佰万圆整"),
        ("1001000", "壹佰万壹仟圆整"),
        ("1000100", "壹佰万零壹佰圆整"),
        ("100000000", "壹亿圆整"),
        ("100000001", "壹亿零壹圆整"),
        ("100001000", "壹亿零壹仟圆整"),
        ("101000000", "壹亿零壹佰万圆整"),
        ("110000000", "壹亿壹仟万圆整"),
        ("1000000000", "壹拾亿圆整"),
        ("100000000000", "壹仟亿圆整"),
        ("999999999999.99", "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖圆玖角玖分"),
        ("0.5", "伍角整"),
        ("0.05", "伍分"),
        ("0.56", "伍角陆分"),
        ("10.50", "壹拾圆伍角整"),
        ("10.05", "壹拾圆零伍分"),
        ("1000.01", "壹仟圆零壹分"),
        ("110000.10", "壹拾壹万圆壹角整"),
        ("3068.70", "叁仟零陆拾捌圆柒角整"),
        ("113000.00", "壹拾壹万叁仟圆整"),
        ("60036.09", "陆万零叁拾陆圆零玖分"),
    ],
)
def test_amounts_in_capitals(amount, capitals):
    assert amount_in_capitals(Decimal(amount)) == capitals


def test_negative_amounts_for_red_invoices_start_with_fu():
    assert amount_in_capitals(Decimal("-100")) == "负壹佰圆整"
    assert amount_in_capitals(Decimal("-0.05")) == "负伍分"


def test_negative_prefix_can_be_the_printed_fushu_marker():
    assert amount_in_capitals(Decimal("-1234.56"), "（负数）") == "（负数）壹仟贰佰叁拾肆圆伍角陆分"


def test_amounts_are_rounded_half_up_to_the_fen_first():
    assert amount_in_capitals(Decimal("0.005")) == "壹分"
    assert amount_in_capitals("1.995") == "贰圆整"


def test_amounts_beyond_qianyi_are_refused():
    with pytest.raises(ValueError, match="千亿"):
        amount_in_capitals(Decimal("1000000000000"))


def test_floats_are_refused():
    with pytest.raises(TypeError):
        amount_in_capitals(1.5)  # type: ignore[arg-type]
