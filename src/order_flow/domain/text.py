"""Text rules: GBK byte lengths, company-name normalisation and CSV cell safety."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

from order_flow.errors import ValidationError

#: A leading character that makes Excel/LibreOffice read a cell as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def gbk_len(s: str) -> int:
    """Length of ``s`` in GBK bytes; ValueError naming the first character GBK lacks."""
    total = 0
    for pos, ch in enumerate(s, start=1):
        try:
            total += len(ch.encode("gbk"))
        except UnicodeEncodeError:
            raise ValueError(
                f"character {ch!r} (U+{ord(ch):04X}) at position {pos} is not in GBK"
            ) from None
    return total


def check_gbk_max(field: str, value: str, limit: int) -> int:
    """Return the GBK length; ValidationError({field: ...}) if too long or not encodable."""
    try:
        n = gbk_len(value)
    except ValueError as exc:
        raise ValidationError({field: str(exc)}) from None
    if n > limit:
        raise ValidationError({field: f"{n} GBK bytes, at most {limit} allowed"})
    return n


def normalize_company_name(s: str) -> str:
    """Fold a company name for comparison.

    NFKC turns full-width to half-width (（） become ()), 有限责任公司 becomes 有限公司,
    all whitespace goes, and the result is casefolded.
    """
    folded = unicodedata.normalize("NFKC", s)
    folded = "".join(ch for ch in folded if not ch.isspace())
    return folded.replace("有限责任公司", "有限公司").casefold()


def similar_names(a: str, b: str) -> float:
    """Similarity in [0, 1] of the normalised names (difflib ratio); 0 if either is empty."""
    na, nb = normalize_company_name(a), normalize_company_name(b)
    if not na or not nb:
        return 0.0
    return difflib.SequenceMatcher(None, na, nb).ratio()


def fuzzy_matches(
    name: str, candidates: Iterable[str], threshold: float = 0.85
) -> list[tuple[str, float]]:
    """Candidates whose normalised name is at least ``threshold`` similar, best first."""
    scored = [(c, similar_names(name, c)) for c in candidates]
    hits = [(c, score) for c, score in scored if score >= threshold]
    return sorted(hits, key=lambda item: -item[1])


def neutralize_csv_cell(s: str) -> str:
    """Prefix ``'`` when a cell starts with = + - @ tab or CR (CSV/formula injection).

    A plain number such as ``-12.50`` (red-invoice amounts) is left alone: it cannot
    carry a formula, and quoting it would turn it into text in a spreadsheet.
    """
    if s.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(s):
        return "'" + s
    return s
