"""Amounts in Chinese capital numerals (大写金额), as printed on fapiao and cheques."""

from __future__ import annotations

from decimal import Decimal

from order_flow.domain.money import Number, round_money

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_IN_GROUP = ("仟", "佰", "拾", "")
_GROUPS = ("亿", "万", "")
#: Largest amount handled: 9999 亿 9999 万 9999 圆 9 角 9 分 (up to 千亿).
MAX_AMOUNT = Decimal("999999999999.99")


def _group(value: int) -> str:
    """0 < value < 10000, with single 零 for inner zero runs; leading zeros dropped."""
    out: list[str] = []
    pending_zero = False
    for digit, unit in zip(f"{value:04d}", _IN_GROUP, strict=True):
        d = int(digit)
        if d == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(DIGITS[d] + unit)
    return "".join(out)


def _integer(value: int) -> str:
    groups = (value // 10**8, value // 10**4 % 10**4, value % 10**4)
    out: list[str] = []
    pending_zero = False
    for g, unit in zip(groups, _GROUPS, strict=True):
        if g == 0:
            pending_zero = pending_zero or bool(out)
            continue
        if out and (pending_zero or g < 1000):
            out.append("零")
        out.append(_group(g) + unit)
        pending_zero = False
    return "".join(out)


def amount_in_capitals(amount: Number, negative_prefix: str = "负") -> str:
    """1234.56 -> 壹仟贰佰叁拾肆圆伍角陆分; 100 -> 壹佰圆整; 0 -> 零圆整.

    Conventions (会计基础工作规范): 圆 not 元; 整 after 圆 or 角 when there are no fen;
    one 零 for a run of zeros; 壹拾 is written in full; an amount under one yuan starts
    at 角/分. Negative amounts (red-letter invoices) get ``negative_prefix``, "负" by
    default; a renderer wanting "（负数）" passes that instead. The amount is rounded
    half up to the fen first.
    """
    value = round_money(amount)
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"amount {value} is beyond 千亿")
    sign = negative_prefix if value < 0 else ""
    fen_total = int(abs(value) * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if fen_total == 0:
        return "零圆整"
    parts: list[str] = []
    if yuan:
        parts.append(_integer(yuan) + "圆")
    if jiao:
        parts.append(DIGITS[jiao] + "角")
    elif yuan and fen:
        parts.append("零")
    if fen:
        parts.append(DIGITS[fen] + "分")
    else:
        parts.append("整")
    return sign + "".join(parts)
