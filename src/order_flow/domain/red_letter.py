"""Red-letter (红字) invoices: never reverse more than is still unreversed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from order_flow.domain.invoice_line import InvoiceLineDraft
from order_flow.domain.money import (
    HasAmounts,
    LineAmounts,
    Number,
    round_money,
    round_qty,
    to_decimal,
)

_ZERO = Decimal("0.00")


@dataclass(frozen=True)
class RedLetterPlan:
    """A checked red-letter request; ``red_amount`` is negative."""

    blue_total: Decimal
    already_reversed: Decimal
    red_amount: Decimal

    @property
    def unreversed_after(self) -> Decimal:
        return self.blue_total - self.already_reversed + self.red_amount

    @property
    def fully_reversed(self) -> bool:
        return self.unreversed_after == 0


def plan_red(blue_total: Number, already_reversed: Number, requested: Number) -> RedLetterPlan:
    """Check a red request against the unreversed amount (all on one basis, e.g. gross).

    ``already_reversed`` is a magnitude; a negative sum of red invoices is accepted too.
    ``requested`` must be positive, in fen, and at most what is not yet reversed.
    """
    blue, done, want = (
        to_decimal(blue_total),
        abs(to_decimal(already_reversed)),
        to_decimal(requested),
    )
    if blue <= 0:
        raise ValueError(f"the blue invoice total must be positive, got {blue}")
    if done > blue:
        raise ValueError(f"already reversed {done} exceeds the blue total {blue}")
    if want <= 0 or want != round_money(want):
        raise ValueError(f"the red amount must be a positive amount in fen, got {want}")
    if want > blue - done:
        raise ValueError(f"the red amount {want} exceeds the unreversed {blue - done}")
    return RedLetterPlan(blue, done, -want)


def check_red_amount(blue_total: Number, already_reversed: Number, requested: Number) -> Decimal:
    """The (negative) red amount for ``requested``; ValueError if it is not allowed."""
    return plan_red(blue_total, already_reversed, requested).red_amount


def red_lines(
    blue_lines: Sequence[InvoiceLineDraft],
    *,
    ratio: Number | None = None,
    amounts: Sequence[Number] | None = None,
    reversed_so_far: Sequence[HasAmounts] | None = None,
) -> list[InvoiceLineDraft]:
    """Negative lines reversing ``blue_lines`` by a ``ratio`` in (0, 1] of each blue line's
    gross, or by per-line gross ``amounts``; ``reversed_so_far`` holds per-line magnitudes.

    Per line, the red net, tax and gross never exceed what is unreversed. A line reversed
    in full takes exactly the unreversed amounts; otherwise net = round(g / (1 + rate)),
    nudged into range. Quantities are prorated. Zero lines are dropped.
    """
    if (ratio is None) == (amounts is None):
        raise ValueError("give exactly one of ratio or amounts")
    r = to_decimal(ratio) if ratio is not None else None
    if r is not None and not 0 < r <= 1:
        raise ValueError(f"the red ratio must be in (0, 1], got {r}")
    if amounts is not None and len(amounts) != len(blue_lines):
        raise ValueError("need one amount per blue line")
    if reversed_so_far is not None and len(reversed_so_far) != len(blue_lines):
        raise ValueError("need one reversed-so-far entry per blue line")
    out: list[InvoiceLineDraft] = []
    for i, blue in enumerate(blue_lines):
        done = (
            reversed_so_far[i] if reversed_so_far is not None else LineAmounts(_ZERO, _ZERO, _ZERO)
        )
        un = LineAmounts(
            blue.net - abs(done.net), blue.tax - abs(done.tax), blue.gross - abs(done.gross)
        )
        if un.net < 0 or un.tax < 0 or un.gross < 0:
            raise ValueError(f"line {blue.order_line_id}: more was reversed than invoiced")
        if r is not None:
            g = min(round_money(blue.gross * r), un.gross)
        else:
            assert amounts is not None
            g = to_decimal(amounts[i])
            if g < 0 or g != round_money(g) or g > un.gross:
                raise ValueError(
                    f"line {blue.order_line_id}: red amount {g} must be in fen, "
                    f"between 0 and the unreversed {un.gross}"
                )
        if g == 0:
            continue
        if g == un.gross:
            net = un.net
        else:
            net = round_money(g / (1 + blue.rate))
            net = max(min(net, un.net, g), g - un.tax, _ZERO)
        qty = blue.qty if g == blue.gross else round_qty(blue.qty * g / blue.gross)
        out.append(replace(blue, qty=-qty, net=-net, tax=-(g - net), gross=-g))
    if not out:
        raise ValueError("nothing to reverse")
    return out
