"""One invoice line before numbering, and the tax-arithmetic tolerance it must meet."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from order_flow.domain.money import Number, line_amounts, round_money, to_decimal

#: Allowed gap between a line's tax and round(net x rate); beyond it, an invoice is a problem.
TAX_TOLERANCE = Decimal("0.06")


@dataclass(frozen=True)
class InvoiceLineDraft:
    """One invoice line before numbering; ``unit_price`` is gross if ``inclusive``."""

    order_line_id: int | str
    description: str
    qty: Decimal
    unit_price: Decimal
    rate: Decimal
    inclusive: bool
    net: Decimal
    tax: Decimal
    gross: Decimal

    @classmethod
    def build(
        cls,
        order_line_id: int | str,
        description: str,
        qty: Number,
        unit_price: Number,
        rate: Number,
        inclusive: bool,
    ) -> InvoiceLineDraft:
        """A draft whose amounts come from :func:`line_amounts`."""
        q, p, r = to_decimal(qty), to_decimal(unit_price), to_decimal(rate)
        a = line_amounts(q, p, r, inclusive)
        return cls(order_line_id, description, q, p, r, inclusive, a.net, a.tax, a.gross)


def tax_deviation(line: InvoiceLineDraft) -> Decimal:
    """|tax - round(net x rate)|: split remainders and red lines can drift by a few fen."""
    return abs(line.tax - round_money(line.net * line.rate))
