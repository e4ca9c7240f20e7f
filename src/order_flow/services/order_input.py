"""Pure helpers of the order service: parsing a request body, numbers, hashes, progress.

Nothing here touches the database; ``parse_order`` collects every field error
(keys like ``lines[2].qty``) so the service can refuse a request before writing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from order_flow.config import Settings
from order_flow.domain.enums import Priority

PRICING = ("exclusive", "inclusive")
SIGNOFF_GROUPS = ("warehouse", "production", "logistics")
_MAX_PLACES = 8
_HUNDRED = Decimal("100")


@dataclass(frozen=True)
class LineInput:
    product_id: int | None
    qty: Decimal | None
    unit_price: Decimal | None = None
    description: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The template form: Decimals as text."""
        return {
            "product_id": self.product_id,
            "qty": str(self.qty),
            "unit_price": None if self.unit_price is None else str(self.unit_price),
            "description": self.description,
        }


@dataclass(frozen=True)
class OrderInput:
    customer_id: int | None
    pricing: str
    priority: str
    promised_date: date | None
    customer_po: str | None
    notes: str
    special: bool
    signoff_groups: tuple[str, ...]
    lines: tuple[LineInput, ...]
    errors: dict[str, str] = field(default_factory=dict)


def parse_order(data: Mapping[str, Any], today: date, settings: Settings) -> OrderInput:
    """Check the shape and ranges of an order body; ``errors`` lists every problem."""
    errors: dict[str, str] = {}
    customer_id = _int(data.get("customer_id"))
    if customer_id is None:
        errors["customer_id"] = "required: the id of a customer"
    pricing = data.get("pricing") or "exclusive"
    if pricing not in PRICING:
        errors["pricing"] = f"must be one of {', '.join(PRICING)}"
    priority = data.get("priority") or Priority.NORMAL.value
    if priority not in {p.value for p in Priority}:
        errors["priority"] = f"must be one of {', '.join(p.value for p in Priority)}"
    promised = _date(data.get("promised_date"))
    if data.get("promised_date") not in (None, "") and promised is None:
        errors["promised_date"] = "must be a date like 2026-03-31"
    elif promised is not None and promised < today:
        errors["promised_date"] = "must not be in the past"
    po = str(data.get("customer_po") or "").strip() or None
    if po is not None and len(po) > 64:
        errors["customer_po"] = "at most 64 characters"
    notes = data.get("notes") or ""
    if not isinstance(notes, str):
        errors["notes"] = "must be text"
    special = data.get("special", False)
    if not isinstance(special, bool):
        errors["special"] = "must be true or false"
    groups = data.get("signoff_groups") or []
    if not isinstance(groups, list | tuple) or any(g not in SIGNOFF_GROUPS for g in groups):
        errors["signoff_groups"] = f"must be a subset of {', '.join(SIGNOFF_GROUPS)}"
        groups = []
    elif special is True and not groups:
        errors["signoff_groups"] = "a special order needs at least one sign-off group"
    lines = parse_lines(data.get("lines"), settings, errors)
    return OrderInput(
        customer_id=customer_id,
        pricing=str(pricing),
        priority=str(priority),
        promised_date=promised,
        customer_po=po,
        notes=notes if isinstance(notes, str) else "",
        special=special is True,
        signoff_groups=tuple(dict.fromkeys(groups)),
        lines=tuple(lines),
        errors=errors,
    )


def parse_template(
    name: str, lines: Sequence[Mapping[str, Any]], settings: Settings
) -> tuple[list[LineInput], dict[str, str]]:
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "required"
    elif len(name.strip()) > 100:
        errors["name"] = "at most 100 characters"
    return parse_lines(lines, settings, errors), errors


def parse_lines(raw: object, settings: Settings, errors: dict[str, str]) -> list[LineInput]:
    if not isinstance(raw, list | tuple) or not raw:
        errors["lines"] = "at least one line is required"
        return []
    out = []
    for i, item in enumerate(raw):
        key = f"lines[{i}]"
        if not isinstance(item, Mapping):
            errors[key] = "must be an object"
            continue
        product_id = _int(item.get("product_id"))
        if product_id is None:
            errors[f"{key}.product_id"] = "required: the id of a product"
        qty = _amount(item.get("qty"), f"{key}.qty", settings.max_line_qty, errors, positive=True)
        price = None
        if item.get("unit_price") not in (None, ""):
            price = _amount(
                item.get("unit_price"), f"{key}.unit_price", settings.max_unit_price, errors
            )
        description = item.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > 200):
            errors[f"{key}.description"] = "text of at most 200 characters"
            description = None
        out.append(LineInput(product_id, qty, price, (description or "").strip() or None))
    return out


def _amount(
    raw: object, key: str, ceiling: Decimal, errors: dict[str, str], positive: bool = False
) -> Decimal | None:
    if raw is None or raw == "":
        errors[key] = "required"
        return None
    if isinstance(raw, bool | float) or not isinstance(raw, str | int | Decimal):
        errors[key] = "must be a number written as text or an integer (never a float)"
        return None
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except InvalidOperation:
        errors[key] = "must be a number"
        return None
    if not value.is_finite():
        errors[key] = "must be a number"
    elif positive and value <= 0:
        errors[key] = "must be greater than 0"
    elif value < 0:
        errors[key] = "must not be negative"
    elif value > ceiling:
        errors[key] = f"must be at most {ceiling}"
    elif -int(value.normalize().as_tuple().exponent) > _MAX_PLACES:
        errors[key] = f"at most {_MAX_PLACES} decimal places"
    else:
        return value
    return None


def _int(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return None


def _date(raw: object) -> date | None:
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            return None
    return None


# -- numbers, hashes and progress ---------------------------------------------------


def order_number(day: date, seq: int) -> str:
    return f"SO{day:%Y%m%d}-{seq:06d}"


def revision_number(number: str, revision: int) -> str:
    """SO...-000012 -> SO...-000012-R2; SO...-000012-R2 -> SO...-000012-R3."""
    base = number.rsplit("-R", 1)[0] if "-R" in number else number
    return f"{base}-R{revision}"


def request_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a request body (sorted keys, Decimals as text)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HasQuantities(Protocol):
    @property
    def qty(self) -> Decimal: ...
    @property
    def qty_delivered(self) -> Decimal: ...
    @property
    def qty_invoiced(self) -> Decimal: ...


@dataclass(frozen=True)
class Progress:
    """Delivered and billed in percent (0.00-100.00), computed, never stored."""

    delivered_pct: Decimal
    billed_pct: Decimal


def progress_of(lines: Iterable[HasQuantities]) -> Progress:
    """The mean of the lines' fractions: each line counts equally, since quantities of
    different units do not add up; a line's fraction is capped at 1."""

    def pct(fractions: list[Decimal]) -> Decimal:
        if not fractions:
            return Decimal("0.00")
        return (sum(fractions, Decimal(0)) / len(fractions) * _HUNDRED).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    items = [ln for ln in lines if ln.qty > 0]
    return Progress(
        pct([min(ln.qty_delivered / ln.qty, Decimal(1)) for ln in items]),
        pct([min(ln.qty_invoiced / ln.qty, Decimal(1)) for ln in items]),
    )
