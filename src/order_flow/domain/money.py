"""Money arithmetic: Decimal only, ROUND_HALF_UP (四舍五入), rounding per line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Protocol

FEN = Decimal("0.01")
#: Quantities and unit prices keep up to 8 decimal places.
QTY_STEP = Decimal("0.00000001")
PRICE_STEP = QTY_STEP
#: Enough digits for qty (8 dp) x price (8 dp) on amounts up to 10^12 without loss.
_PREC = 60

Number = str | int | Decimal


def to_decimal(value: Number) -> Decimal:
    """Build a finite Decimal from a str, int or Decimal; floats raise TypeError."""
    if isinstance(value, float):
        raise TypeError(f"money must not be a float ({value!r}); pass a str or Decimal")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"expected str, int or Decimal, got {type(value).__name__}")
    try:
        d = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return d


def _quantize(value: Number, step: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _PREC
        return to_decimal(value).quantize(step, rounding=ROUND_HALF_UP)


def round_money(value: Number) -> Decimal:
    """Round to the fen, half away from zero (2.345 -> 2.35, -2.345 -> -2.35)."""
    return _quantize(value, FEN)


def round_qty(value: Number) -> Decimal:
    """Round a quantity to 8 decimal places, half up."""
    return _quantize(value, QTY_STEP)


def round_price(value: Number) -> Decimal:
    """Round a unit price to 8 decimal places, half up."""
    return _quantize(value, PRICE_STEP)


def check_rate(rate: Number) -> Decimal:
    """A VAT rate as a fraction (0.13 for 13 %); must be in [0, 1)."""
    r = to_decimal(rate)
    if not Decimal(0) <= r < Decimal(1):
        raise ValueError(f"tax rate must be a fraction in [0, 1), got {r}")
    return r


class HasAmounts(Protocol):
    @property
    def net(self) -> Decimal: ...
    @property
    def tax(self) -> Decimal: ...
    @property
    def gross(self) -> Decimal: ...


@dataclass(frozen=True)
class LineAmounts:
    """The rounded amounts of one line: net (不含税金额), tax (税额), gross (价税合计)."""

    net: Decimal
    tax: Decimal
    gross: Decimal


def line_amounts(qty: Number, unit_price: Number, rate: Number, inclusive: bool) -> LineAmounts:
    """Amounts of one line per DOMAIN.md.

    Exclusive price: net = round(qty x price), tax = round(net x rate), gross = net + tax.
    Inclusive price: gross = round(qty x price), net = round(gross / (1 + rate)),
    tax = gross - net.
    """
    q, p, r = to_decimal(qty), to_decimal(unit_price), check_rate(rate)
    with localcontext() as ctx:
        ctx.prec = _PREC
        if inclusive:
            gross = round_money(q * p)
            net = round_money(gross / (1 + r))
            return LineAmounts(net=net, tax=gross - net, gross=gross)
        net = round_money(q * p)
        tax = round_money(net * r)
        return LineAmounts(net=net, tax=tax, gross=net + tax)


@dataclass(frozen=True)
class Totals:
    """Document totals: always the sum of the already rounded lines."""

    net: Decimal = Decimal("0.00")
    tax: Decimal = Decimal("0.00")
    gross: Decimal = Decimal("0.00")

    @classmethod
    def sum(cls, lines: Iterable[HasAmounts]) -> Totals:
        net = tax = gross = Decimal("0.00")
        for line in lines:
            net += line.net
            tax += line.tax
            gross += line.gross
        return cls(net=net, tax=tax, gross=gross)

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.net + other.net, self.tax + other.tax, self.gross + other.gross)
