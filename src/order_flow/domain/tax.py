"""The effective-dated VAT rate table and the tax classification code check."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from order_flow.domain.enums import TaxKind
from order_flow.errors import NotFoundError

_ZERO = Decimal("0")
_TAX_CLASS_RE = re.compile(r"[0-9]{19}")


@dataclass(frozen=True)
class TaxRate:
    """One rate of one category over a date range (``effective_to`` inclusive, None = open).

    ``rate`` is a fraction (0.13). Exempt and not-taxable rates carry no rate: they count
    as 0 in arithmetic, but the invoice prints the marker instead of a percentage.
    """

    code: str
    rate: Decimal | None
    kind: TaxKind = TaxKind.STANDARD
    effective_from: date = date(1994, 1, 1)
    effective_to: date | None = None

    def __post_init__(self) -> None:
        if isinstance(self.rate, float):
            raise TypeError("a tax rate must be a Decimal, not a float")
        if self.kind is TaxKind.STANDARD:
            if self.rate is None or not _ZERO <= self.rate < 1:
                raise ValueError(f"{self.code}: a standard rate needs a fraction in [0, 1)")
        elif self.rate not in (None, _ZERO):
            raise ValueError(f"{self.code}: a {self.kind.value} marker cannot carry a rate")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError(f"{self.code}: effective_to is before effective_from")

    @property
    def arithmetic_rate(self) -> Decimal:
        """The rate used for computing amounts (0 for the markers)."""
        return self.rate if self.rate is not None else _ZERO

    @property
    def label(self) -> str:
        """What the invoice prints in the tax-rate column: 13%, 免税 or 不征税."""
        if self.kind is TaxKind.EXEMPT:
            return "免税"
        if self.kind is TaxKind.NOT_TAXABLE:
            return "不征税"
        return f"{(self.arithmetic_rate * 100).normalize():f}%"

    def applies_on(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


class RateTable:
    """Rates by category code; at most one rate per code is in force on any day."""

    def __init__(self, rates: Iterable[TaxRate]) -> None:
        self._rates: dict[str, list[TaxRate]] = {}
        for r in rates:
            self._rates.setdefault(r.code, []).append(r)
        for code, items in self._rates.items():
            items.sort(key=lambda r: r.effective_from)
            for prev, nxt in zip(items, items[1:], strict=False):
                if prev.effective_to is None or prev.effective_to >= nxt.effective_from:
                    raise ValueError(f"{code}: rate periods overlap at {nxt.effective_from}")

    def rate_for(self, category_code: str, on: date) -> TaxRate:
        """The rate of ``category_code`` in force on ``on``; NotFoundError if none."""
        for r in self._rates.get(category_code, []):
            if r.applies_on(on):
                return r
        raise NotFoundError(f"no VAT rate for category {category_code!r} on {on.isoformat()}")

    def codes(self) -> list[str]:
        return sorted(self._rates)

    def __iter__(self) -> Iterator[TaxRate]:
        for items in self._rates.values():
            yield from items


def _std(code: str, pct: str, start: date, end: date | None = None) -> TaxRate:
    return TaxRate(code, Decimal(pct) / 100, TaxKind.STANDARD, start, end)


#: Category codes of the default table.
GENERAL_13 = "general_13"  # goods, processing, repairs, tangible leasing
GENERAL_9 = "general_9"  # transport, construction, basic telecom, farm products...
GENERAL_6 = "general_6"  # modern services
GENERAL_0 = "general_0"  # exports, zero-rated
SMALL_SCALE_3 = "small_scale_3"
SMALL_SCALE_1 = "small_scale_1"  # reduced small-scale rate
EXEMPT = "exempt"
NOT_TAXABLE = "not_taxable"


def default_rate_table() -> RateTable:
    """The default Chinese VAT rates; a starting point, configuration may replace it.

    The 13 % and 9 % categories keep their history (16 %/10 % from 2018-05-01, 13 %/9 %
    from 2019-04-01, per 2019 announcement No. 39). The reduced small-scale 1 % rate
    runs to 2027-12-31 (2023 announcement No. 19).
    """
    origin = date(2016, 5, 1)
    return RateTable(
        [
            _std(GENERAL_13, "16", date(2018, 5, 1), date(2019, 3, 31)),
            _std(GENERAL_13, "13", date(2019, 4, 1)),
            _std(GENERAL_9, "10", date(2018, 5, 1), date(2019, 3, 31)),
            _std(GENERAL_9, "9", date(2019, 4, 1)),
            _std(GENERAL_6, "6", origin),
            _std(GENERAL_0, "0", origin),
            _std(SMALL_SCALE_3, "3", origin),
            _std(SMALL_SCALE_1, "1", date(2020, 3, 1), date(2027, 12, 31)),
            TaxRate(EXEMPT, None, TaxKind.EXEMPT, origin),
            TaxRate(NOT_TAXABLE, None, TaxKind.NOT_TAXABLE, origin),
        ]
    )


def is_valid_tax_class_code(code: str) -> bool:
    """税收分类编码: exactly 19 ASCII digits."""
    return bool(_TAX_CLASS_RE.fullmatch(code))


def validate_tax_class_code(code: str) -> str:
    """Return the code stripped of spaces; ValueError unless it is 19 digits."""
    cleaned = code.replace(" ", "")
    if not is_valid_tax_class_code(cleaned):
        raise ValueError(f"a tax classification code is 19 digits, got {code!r}")
    return cleaned
