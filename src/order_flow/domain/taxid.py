"""Taxpayer IDs: the unified social credit code (GB 32100-2015) and resident ID cards."""

from __future__ import annotations

import unicodedata
from datetime import date

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_AUTHORITIES = frozenset("123456789ANY")
#: W_i = 3^(i-1) mod 31 for positions 1..17.
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def normalize_tax_id(s: str) -> str:
    """NFKC (full-width to half-width), drop spaces and hyphens, uppercase."""
    folded = unicodedata.normalize("NFKC", s)
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "-‐‑–—").upper()


def compute_uscc_check(first17: str) -> str:
    """The check character for the first 17 characters of a USCC."""
    s = normalize_tax_id(first17)
    if len(s) != 17:
        raise ValueError(f"need the first 17 characters, got {len(s)}")
    total = 0
    for pos, (ch, weight) in enumerate(zip(s, USCC_WEIGHTS, strict=True), start=1):
        value = USCC_ALPHABET.find(ch)
        if value < 0:
            raise ValueError(f"bad character {ch!r} at position {pos}")
        total += value * weight
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(s: str) -> str:
    """Return the normalised code, or raise ValueError saying what is wrong.

    Letters are legal anywhere the alphabet allows, including positions 1-8
    (codes registered under A, N or Y have them).
    """
    code = normalize_tax_id(s)
    if len(code) != 18:
        raise ValueError(f"a unified social credit code has 18 characters, got {len(code)}")
    for pos, ch in enumerate(code, start=1):
        if ch not in USCC_ALPHABET:
            raise ValueError(
                f"bad character {ch!r} at position {pos} (I, O, S, V and Z are never used)"
            )
    if code[0] not in USCC_AUTHORITIES:
        raise ValueError(f"bad registering authority {code[0]!r} at position 1 (1-9, A, N, Y)")
    expected = compute_uscc_check(code[:17])
    if code[17] != expected:
        raise ValueError(f"wrong check character {code[17]!r}, expected {expected!r}")
    return code


def is_valid_uscc(s: str) -> bool:
    try:
        validate_uscc(s)
    except ValueError:
        return False
    return True


def compute_id_card_check(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character; 10 is written X."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need the first 17 digits of the ID card number")
    total = sum(int(d) * w for d, w in zip(first17, ID_CARD_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def validate_id_card(s: str, today: date | None = None) -> str:
    """Return the normalised 18-character resident ID number, or raise ValueError."""
    number = normalize_tax_id(s)
    if len(number) != 18:
        raise ValueError(f"an ID card number has 18 characters, got {len(number)}")
    for pos, ch in enumerate(number[:17], start=1):
        if not ("0" <= ch <= "9"):
            raise ValueError(f"bad character {ch!r} at position {pos} (digits only)")
    if not ("0" <= number[17] <= "9" or number[17] == "X"):
        raise ValueError(f"bad character {number[17]!r} at position 18 (a digit or X)")
    birth_text = number[6:14]
    try:
        birth = date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:]))
    except ValueError:
        raise ValueError(f"birth date {birth_text} at positions 7-14 is not a date") from None
    today = today or date.today()
    if birth.year < 1900 or birth > today:
        raise ValueError(f"birth date {birth.isoformat()} is not plausible")
    expected = compute_id_card_check(number[:17])
    if number[17] != expected:
        raise ValueError(f"wrong check character {number[17]!r}, expected {expected!r}")
    return number


def is_valid_id_card(s: str, today: date | None = None) -> bool:
    try:
        validate_id_card(s, today)
    except ValueError:
        return False
    return True
