"""Invoice drafting: splitting order lines across invoices.

The line draft lives in ``invoice_line`` and red-letter limits in ``red_letter``; both are
re-exported here so callers have one import for invoicing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from decimal import Decimal

from order_flow.domain.invoice_line import TAX_TOLERANCE, InvoiceLineDraft, tax_deviation
from order_flow.domain.money import (
    FEN,
    QTY_STEP,
    LineAmounts,
    Number,
    line_amounts,
    round_qty,
    to_decimal,
)
from order_flow.domain.red_letter import RedLetterPlan, check_red_amount, plan_red, red_lines

__all__ = [
    "MAX_PIECES_PER_LINE",
    "TAX_TOLERANCE",
    "InvoiceLineDraft",
    "RedLetterPlan",
    "check_red_amount",
    "plan_red",
    "red_lines",
    "split_line",
    "split_lines",
    "tax_deviation",
]

#: Refuse to split one line into more pieces than this (a limit far too low for the order).
MAX_PIECES_PER_LINE = 1000
_ZERO = Decimal("0.00")


def _amounts(line: InvoiceLineDraft, qty: Decimal) -> LineAmounts:
    return line_amounts(qty, line.unit_price, line.rate, line.inclusive)


def _fen(d: Decimal) -> int:
    return int(d / FEN)


def _candidates(q_max: Decimal, step: Decimal, halve: bool = True) -> Iterator[Decimal]:
    """Full-piece quantities to try: q_max, a few steps below it, then halvings."""
    for i in range(32):
        if q_max - i * step > 0:
            yield q_max - i * step
    q = q_max if halve else Decimal(0)
    while (q := (q / 2 // step) * step) > 0:
        yield q


def split_line(
    line: InvoiceLineDraft, limit: Decimal, max_pieces: int = MAX_PIECES_PER_LINE
) -> list[InvoiceLineDraft]:
    """Split one line by quantity so that every piece's net is at most ``limit``.

    Full pieces take the largest quantity that fits (whole units if the line's quantity
    is whole, else steps of 10^-8), with amounts from the line formula. The last piece
    takes the remaining quantity and the remaining net/tax/gross, so the pieces add up
    exactly to the line. If the rounding drift of many full pieces would leave the
    remainder empty or its tax off by more than TAX_TOLERANCE, the pieces are cut on
    cumulative amounts instead (piece i = amounts(i x q) - amounts((i-1) x q)).
    """
    if line.net <= limit:
        return [line]
    if line.net > limit * max_pieces:
        raise ValueError(
            f"line {line.order_line_id}: net {line.net} would need over {max_pieces} invoices "
            f"at the limit {limit}"
        )
    if line.qty != round_qty(line.qty):
        raise ValueError(f"line {line.order_line_id}: quantity has more than 8 decimals")
    step = Decimal(1) if line.qty == line.qty.to_integral_value() else QTY_STEP
    if _amounts(line, step).net > limit:
        raise ValueError(
            f"line {line.order_line_id}: one indivisible unit ({step}) at {line.unit_price} "
            f"is over the per-invoice limit {limit}"
        )
    lo, hi = 1, int(line.qty / step)
    while lo < hi:  # largest k with net(k * step) <= limit; net is monotone in qty
        mid = (lo + hi + 1) // 2
        if _amounts(line, mid * step).net <= limit:
            lo = mid
        else:
            hi = mid - 1
    q_max = lo * step
    for q in _candidates(q_max, step, halve=False):
        pieces = _full_pieces_and_rest(line, q, limit, max_pieces)
        if pieces:
            return pieces
    for q in _candidates(q_max, step):  # too much rounding drift: cut on cumulative amounts
        pieces = _cumulative_pieces(line, q, limit, max_pieces)
        if pieces:
            return pieces
    raise ValueError(f"line {line.order_line_id}: cannot be split under the limit {limit}")


def _full_pieces_and_rest(
    line: InvoiceLineDraft, q: Decimal, limit: Decimal, max_pieces: int
) -> list[InvoiceLineDraft] | None:
    full = _amounts(line, q)
    if full.net <= 0:
        return None
    # fewest full pieces that leave a remainder within the limit
    k = -(-(_fen(line.net) - _fen(limit)) // _fen(full.net))
    rest_qty = line.qty - k * q
    rest = LineAmounts(
        line.net - k * full.net, line.tax - k * full.tax, line.gross - k * full.gross
    )
    if rest_qty <= 0 or rest.tax < 0 or rest.gross < 0 or k + 1 > max_pieces:
        return None
    piece = replace(line, qty=q, net=full.net, tax=full.tax, gross=full.gross)
    last = replace(line, qty=rest_qty, net=rest.net, tax=rest.tax, gross=rest.gross)
    if tax_deviation(last) > TAX_TOLERANCE:  # k pieces' rounding all landed on the last
        return None
    return [piece] * k + [last]


def _cumulative_pieces(
    line: InvoiceLineDraft, q: Decimal, limit: Decimal, max_pieces: int
) -> list[InvoiceLineDraft] | None:
    """Piece i = amounts(i x q) - amounts((i-1) x q); the last closes on the line's amounts.

    Used when the full pieces' rounding drift, all landing on the remainder, would leave it
    empty or with a tax outside TAX_TOLERANCE; here every piece stays within a fen or two.
    """
    whole = int(line.qty // q)  # both positive: // is floor here
    count = whole + (1 if whole * q < line.qty else 0)
    if count > max_pieces:
        return None
    out: list[InvoiceLineDraft] = []
    before, done_qty = LineAmounts(_ZERO, _ZERO, _ZERO), Decimal(0)
    for i in range(1, count + 1):
        cut = min(i * q, line.qty)
        upto = _amounts(line, cut) if cut < line.qty else line
        piece = replace(
            line,
            qty=cut - done_qty,
            net=upto.net - before.net,
            tax=upto.tax - before.tax,
            gross=upto.gross - before.gross,
        )
        if piece.net > limit or piece.tax < 0 or tax_deviation(piece) > TAX_TOLERANCE:
            return None
        out.append(piece)
        before, done_qty = LineAmounts(upto.net, upto.tax, upto.gross), cut
    return out


def split_lines(
    lines: Sequence[InvoiceLineDraft],
    max_net_per_invoice: Number,
    max_lines: int,
    max_pieces: int = MAX_PIECES_PER_LINE,
) -> list[list[InvoiceLineDraft]]:
    """Pack lines, in order, into invoices of at most ``max_net_per_invoice`` net and
    ``max_lines`` lines (next-fit: a line that does not fit opens the next invoice).

    Lines over the limit are split first (:func:`split_line`); two pieces of the same
    line never share an invoice. Negative lines (discounts) are refused.
    """
    limit = to_decimal(max_net_per_invoice)
    if limit <= 0:
        raise ValueError(f"the per-invoice limit must be positive, got {limit}")
    if max_lines < 1:
        raise ValueError(f"the line cap must be at least 1, got {max_lines}")
    pieces: list[tuple[int, InvoiceLineDraft]] = []
    for index, line in enumerate(lines):
        if line.qty < 0 or line.net < 0 or line.tax < 0 or line.gross < 0:
            raise ValueError(f"line {line.order_line_id}: negative lines cannot be split")
        pieces.extend((index, p) for p in split_line(line, limit, max_pieces))
    invoices: list[list[InvoiceLineDraft]] = []
    current: list[InvoiceLineDraft] = []
    sources: set[int] = set()
    net = _ZERO
    for index, piece in pieces:
        full = len(current) >= max_lines or net + piece.net > limit or index in sources
        if current and full:
            invoices.append(current)
            current, sources, net = [], set(), _ZERO
        current.append(piece)
        sources.add(index)
        net += piece.net
    if current:
        invoices.append(current)
    return invoices
