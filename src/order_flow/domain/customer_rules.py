"""Customer master-data rules: field checks, tax IDs and GBK limits (pure, no I/O).

Uniqueness against other customers is the service's job; everything that can be
decided from the submitted fields alone is decided here, all problems at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from order_flow.domain.enums import InvoiceType, StockPolicy
from order_flow.domain.money import to_decimal
from order_flow.domain.taxid import validate_id_card, validate_uscc
from order_flow.domain.text import gbk_len
from order_flow.errors import ValidationError

KINDS = ("company", "individual")
LOCALES = ("zh_CN", "en")
#: GBK byte limits of the invoice buyer block (DOMAIN.md).
NAME_MAX_GBK = 100
ADDRESS_PHONE_MAX_GBK = 100
BANK_ACCOUNT_MAX_GBK = 100
#: SQLite keeps 15 significant digits; money has 2 decimals.
CREDIT_LIMIT_MAX = Decimal("1e13")
SPECIAL_REQUIRED = ("name", "tax_id", "address", "phone", "bank", "account")
TEXT_FIELDS = ("code", "name", "address", "phone", "bank", "account", "email")
OTHER_FIELDS = tuple(
    "kind invoice_type tax_id credit_limit stock_policy blocked locale notify_by_email "
    "payment_days".split()
)
CONTACT_FIELDS = ("name", "phone", "email", "role")
#: Character limits of the stored columns (store/customers.py; a unit test keeps them equal).
MAX_CHARS = {
    "code": 32,
    "name": 100,
    "address": 200,
    "phone": 50,
    "bank": 100,
    "account": 50,
    "email": 200,
}
CONTACT_MAX_CHARS = {"name": 50, "phone": 50, "email": 200, "role": 50}


def decimal_places(d: Decimal) -> int:
    exponent = d.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _gbk_or_error(errors: dict[str, str], name: str, value: str) -> int:
    try:
        return gbk_len(value)
    except ValueError as exc:
        errors.setdefault(name, str(exc))
        return 0


def _flag(errors: dict[str, str], name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        errors[name] = "must be true or false"
        return False
    return value


def clean_customer(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a full set of customer fields; every problem at once, by field.

    Pure: uniqueness against the database is checked by the service.
    """
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        raw = data.get(name)
        value = "" if raw is None else raw
        if not isinstance(value, str):
            errors[name] = "must be text"
            value = ""
        value = value.strip()
        if len(value) > MAX_CHARS[name]:
            errors[name] = f"at most {MAX_CHARS[name]} characters"
        out[name] = value

    kind = data.get("kind", "company")
    if kind not in KINDS:
        errors["kind"] = f"must be one of {', '.join(KINDS)}"
    invoice_type = data.get("invoice_type", InvoiceType.ORDINARY.value)
    if invoice_type not in tuple(InvoiceType):
        errors["invoice_type"] = "must be special or ordinary"
    out["kind"], out["invoice_type"] = kind, invoice_type

    n = _gbk_or_error(errors, "name", out["name"])
    if not out["name"]:
        errors["name"] = "required"
    elif n > NAME_MAX_GBK:
        errors["name"] = f"{n} GBK bytes, at most {NAME_MAX_GBK} allowed"

    out["tax_id"] = _clean_tax_id(errors, data.get("tax_id"), kind, invoice_type)

    pairs = (
        ("address", "phone", ADDRESS_PHONE_MAX_GBK),
        ("bank", "account", BANK_ACCOUNT_MAX_GBK),
    )
    for first, second, limit in pairs:
        n = _gbk_or_error(errors, first, out[first]) + _gbk_or_error(errors, first, out[second])
        if n > limit and first not in errors:
            errors[first] = f"{first} and {second} take {n} GBK bytes together, at most {limit}"

    if invoice_type == InvoiceType.SPECIAL:
        for name in SPECIAL_REQUIRED:
            if not out[name] and name not in errors:
                errors[name] = "required for a special (专票) invoice customer"

    if out["email"] and "@" not in out["email"]:
        errors["email"] = "not an e-mail address"

    try:
        credit = to_decimal(data.get("credit_limit", "0"))
        if not 0 <= credit < CREDIT_LIMIT_MAX or decimal_places(credit) > 2:
            raise ValueError(f"must be from 0 to below {CREDIT_LIMIT_MAX}, at most 2 decimals")
        out["credit_limit"] = credit
    except (TypeError, ValueError) as exc:
        errors["credit_limit"] = str(exc)

    policy = data.get("stock_policy", StockPolicy.PARTIAL.value)
    if policy not in tuple(StockPolicy):
        errors["stock_policy"] = "must be partial or complete"
    locale = data.get("locale", "zh_CN")
    if locale not in LOCALES:
        errors["locale"] = f"must be one of {', '.join(LOCALES)}"
    out["stock_policy"], out["locale"] = policy, locale
    out["blocked"] = _flag(errors, "blocked", data.get("blocked", False))
    out["notify_by_email"] = _flag(errors, "notify_by_email", data.get("notify_by_email", True))

    days = data.get("payment_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
        errors["payment_days"] = "must be a whole number of days from 0 to 3650"
    out["payment_days"] = days

    out["contacts"] = _clean_contacts(errors, data.get("contacts") or [])
    if errors:
        raise ValidationError(errors)
    return out


def _clean_tax_id(errors: dict[str, str], raw: Any, kind: str, invoice_type: str) -> str | None:
    if raw is not None and not isinstance(raw, str):
        errors["tax_id"] = "must be text"
        return None
    if not (raw or "").strip():
        if kind == "company":
            errors["tax_id"] = "required for a company (统一社会信用代码)"
        return None
    try:
        if kind == "individual":
            return validate_id_card(cast(str, raw))
        return validate_uscc(cast(str, raw))
    except ValueError as exc:
        errors["tax_id"] = str(exc)
        return None


def _clean_contacts(errors: dict[str, str], raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        errors["contacts"] = "must be a list"
        return []
    contacts = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors[f"contacts[{i}]"] = "must be an object"
            continue
        contact = {}
        for name in CONTACT_FIELDS:
            value = item.get(name) or ""
            limit = CONTACT_MAX_CHARS[name]
            if not isinstance(value, str):
                errors[f"contacts[{i}].{name}"] = "must be text"
            elif len(value.strip()) > limit:
                errors[f"contacts[{i}].{name}"] = f"at most {limit} characters"
            contact[name] = value.strip() if isinstance(value, str) else ""
        if not contact["name"]:
            errors.setdefault(f"contacts[{i}].name", "required")
        contacts.append(contact)
    return contacts
