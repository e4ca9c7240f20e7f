"""Invoice drafting: splitting lines across invoices, and red-letter (红字) limits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from order_flow.domain.money import (
    FEN,
    QTY_STEP,
    HasAmounts,
    LineAmounts,
    Number,
    line_amounts,
    round_money,
    round_qty,
    to_decimal,
)

#: Allowed gap between a line's tax and round(net x rate); beyond it, an invoice is a problem.
TAX_TOLERANCE = Decimal("0.06")
#: Refuse to split one line into more pieces than this (a limit far too low for the order).
MAX_PIECES_PER_LINE = 1000
_ZERO = Decimal("0.00")


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
