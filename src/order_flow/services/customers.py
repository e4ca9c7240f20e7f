"""Customers: validated master data, duplicate warnings and the communication log."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from order_flow.domain.enums import InvoiceType, StockPolicy
from order_flow.domain.money import to_decimal
from order_flow.domain.taxid import validate_id_card, validate_uscc
from order_flow.domain.text import fuzzy_matches, gbk_len, normalize_company_name
from order_flow.engine.actors import Actor
from order_flow.engine.registry import Guard, Step
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import ConflictError, NotFoundError, ValidationError
from order_flow.store.customers import Communication, Contact, Customer
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Guards this module provides, by the name the workflow files use.
GUARDS: dict[str, Guard] = {}
#: Step bodies this module provides, by the name the workflow files use.
STEPS: dict[str, Step] = {}

KINDS = ("company", "individual")
LOCALES = ("zh_CN", "en")
CHANNELS = ("email", "phone", "wechat", "visit", "letter", "other")
DIRECTIONS = ("in", "out")
#: GBK byte limits of the invoice buyer block (DOMAIN.md).
NAME_MAX_GBK = 100
ADDRESS_PHONE_MAX_GBK = 100
BANK_ACCOUNT_MAX_GBK = 100
#: Fuzzy candidates read per name (same first two normalised characters).
FUZZY_CANDIDATES = 200
#: SQLite keeps 15 significant digits; money has 2 decimals.
CREDIT_LIMIT_MAX = Decimal("1e13")
SPECIAL_REQUIRED = ("name", "tax_id", "address", "phone", "bank", "account")
_TEXT_FIELDS = ("code", "name", "address", "phone", "bank", "account", "email")
_OTHER_FIELDS = tuple(
    "kind invoice_type tax_id credit_limit stock_policy blocked locale notify_by_email "
    "payment_days".split()
)
_CONTACT_FIELDS = ("name", "phone", "email", "role")

_customers = cast(Table, Customer.__table__)


@dataclass
class CustomerCreated:
    customer: Customer
    warnings: list[str] = field(default_factory=list)


def decimal_places(d: Decimal) -> int:
    exponent = d.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _max_chars(column: str) -> int:
    return int(getattr(_customers.c[column].type, "length", 0) or 0)


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
    for name in _TEXT_FIELDS:
        raw = data.get(name)
        value = "" if raw is None else raw
        if not isinstance(value, str):
            errors[name] = "must be text"
            value = ""
        value = value.strip()
        if len(value) > _max_chars(name):
            errors[name] = f"at most {_max_chars(name)} characters"
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
        for name in _CONTACT_FIELDS:
            value = item.get(name) or ""
            limit = int(getattr(Contact.__table__.c[name].type, "length", 0) or 0)
            if not isinstance(value, str):
                errors[f"contacts[{i}].{name}"] = "must be text"
            elif len(value.strip()) > limit:
                errors[f"contacts[{i}].{name}"] = f"at most {limit} characters"
            contact[name] = value.strip() if isinstance(value, str) else ""
        if not contact["name"]:
            errors.setdefault(f"contacts[{i}].name", "required")
        contacts.append(contact)
    return contacts


class CustomerService:
    def __init__(self, app: App) -> None:
        self.app = app

    # -- master data ---------------------------------------------------------------

    def create(self, data: Mapping[str, Any], actor: Actor) -> CustomerCreated:
        clean = clean_customer(data)
        with self.app.engine.uow() as uow:
            s = uow.session
            self._check_unique(s, clean, None)
            warnings = [
                f"similar to existing customer {c.code} {c.name}"
                for c in self.find_similar_in(s, clean["name"])
            ]
            customer = Customer(name_key=normalize_company_name(clean["name"]))
            self._apply(customer, clean)
            generated = not clean["code"]
            if generated:
                customer.code = uuid.uuid4().hex  # placeholder until the id is known
            s.add(customer)
            self._flush(s, clean, None)
            if generated:
                self._assign_code(s, customer)
            uow.commit()
        return CustomerCreated(customer, warnings)

    def update(
        self,
        customer_id: int,
        data: Mapping[str, Any],
        actor: Actor,
        expected_version: int | None = None,
    ) -> Customer:
        """Change the given fields (the rest keep their values); the result is revalidated."""
        with self.app.engine.uow() as uow:
            s = uow.session
            customer = self._load(s, customer_id)
            if expected_version is not None and customer.version != expected_version:
                raise ConflictError(
                    f"customer {customer.code} is at version {customer.version}, "
                    f"not {expected_version}: someone changed it first"
                )
            merged = {**self._as_data(customer), **data}
            clean = clean_customer(merged)
            self._check_unique(s, clean, customer.id)
            self._apply(customer, clean)
            customer.name_key = normalize_company_name(clean["name"])
            try:
                self._flush(s, clean, customer.id)
                uow.commit()
            except StaleDataError:
                raise ConflictError(f"customer {customer_id} was changed by someone else") from None
        return customer

    def get(self, customer_id: int) -> Customer:
        with self.app.engine.session_factory() as s:
            return self._load(s, customer_id)

    def list(
        self, q: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[builtins.list[Customer], int]:
        stmt = select(Customer)
        if q and q.strip():
            term = q.strip()
            key = normalize_company_name(term)
            stmt = stmt.where(
                or_(
                    Customer.code.ilike(f"%{term}%"),
                    Customer.name.contains(term, autoescape=True),
                    Customer.name_key.contains(key, autoescape=True),
                    Customer.tax_id == term.upper(),
                )
            )
        with self.app.engine.session_factory() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(stmt.order_by(Customer.code).limit(limit).offset(offset)).all()
        return builtins.list(rows), int(total)

    def find_similar(self, name: str) -> builtins.list[Customer]:
        with self.app.engine.session_factory() as s:
            return self.find_similar_in(s, name)

    def find_similar_in(
        self, s: Session, name: str, exclude_id: int | None = None
    ) -> builtins.list[Customer]:
        """Customers with the same normalised name, then fuzzy matches among a bounded set."""
        key = normalize_company_name(name)
        if not key:
            return []
        exact = builtins.list(s.scalars(select(Customer).where(Customer.name_key == key)))
        candidates = s.scalars(
            select(Customer)
            .where(Customer.name_key.startswith(key[:2], autoescape=True), Customer.name_key != key)
            .order_by(Customer.id)
            .limit(FUZZY_CANDIDATES)
        ).all()
        by_name = {c.name: c for c in candidates}
        fuzzy = [by_name[n] for n, _ in fuzzy_matches(name, builtins.list(by_name))]
        return [c for c in exact + fuzzy if c.id != exclude_id]

    # -- communication log ---------------------------------------------------------

    def log_contact(
        self,
        customer_id: int,
        channel: str,
        direction: str,
        summary: str,
        actor: Actor,
        order_id: int | None = None,
        invoice_id: int | None = None,
        dedupe_key: str | None = None,
    ) -> Communication:
        with self.app.engine.uow() as uow:
            row = self.log_contact_in(
                uow,
                customer_id,
                channel,
                direction,
                summary,
                actor,
                order_id,
                invoice_id,
                dedupe_key,
            )
            uow.commit()
        return row

    def log_contact_in(
        self,
        uow: UnitOfWork,
        customer_id: int,
        channel: str,
        direction: str,
        summary: str,
        actor: Actor,
        order_id: int | None = None,
        invoice_id: int | None = None,
        dedupe_key: str | None = None,
    ) -> Communication:
        """Record one contact; a dedupe_key seen before returns that row and writes nothing."""
        s = uow.session
        errors: dict[str, str] = {}
        if channel not in CHANNELS:
            errors["channel"] = f"must be one of {', '.join(CHANNELS)}"
        if direction not in DIRECTIONS:
            errors["direction"] = "must be in or out"
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "required"
        if dedupe_key is not None and not 0 < len(dedupe_key) <= 128:
            errors["dedupe_key"] = "1 to 128 characters"
        if errors:
            raise ValidationError(errors)
        if dedupe_key is not None:
            seen = self._by_dedupe_key(s, dedupe_key)
            if seen is not None:
                return seen
        self._load(s, customer_id)
        if order_id is not None:
            order = s.get(Order, order_id)
            if order is None or order.customer_id != customer_id:
                errors["order_id"] = f"no order {order_id} of this customer"
        if invoice_id is not None:
            owner = s.scalar(
                select(Order.customer_id)
                .join(Invoice, Invoice.order_id == Order.id)
                .where(Invoice.id == invoice_id)
            )
            if owner != customer_id:
                errors["invoice_id"] = f"no invoice {invoice_id} of this customer"
        if errors:
            raise ValidationError(errors)
        row = Communication(
            customer_id=customer_id,
            order_id=order_id,
            invoice_id=invoice_id,
            channel=channel,
            direction=direction,
            summary=summary.strip(),
            actor=actor.name,
            dedupe_key=dedupe_key,
        )
        try:
            with s.begin_nested():  # a concurrent twin may win the dedupe_key
                s.add(row)
        except IntegrityError:
            seen = self._by_dedupe_key(s, dedupe_key) if dedupe_key is not None else None
            if seen is None:
                raise
            return seen
        return row

    def communications(self, customer_id: int, limit: int = 100) -> builtins.list[Communication]:
        with self.app.engine.session_factory() as s:
            self._load(s, customer_id)
            rows = s.scalars(
                select(Communication)
                .where(Communication.customer_id == customer_id)
                .order_by(Communication.at.desc(), Communication.id.desc())
                .limit(limit)
            ).all()
        return builtins.list(rows)

    # -- internals -----------------------------------------------------------------

    @staticmethod
    def _load(s: Session, customer_id: int) -> Customer:
        customer = s.get(Customer, customer_id)
        if customer is None:
            raise NotFoundError(f"no customer {customer_id}")
        return customer

    @staticmethod
    def _by_dedupe_key(s: Session, key: str) -> Communication | None:
        return s.scalar(select(Communication).where(Communication.dedupe_key == key))

    @staticmethod
    def _as_data(c: Customer) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(c, name) for name in _TEXT_FIELDS + _OTHER_FIELDS}
        data["contacts"] = [{n: getattr(x, n) for n in _CONTACT_FIELDS} for x in c.contacts]
        return data

    @staticmethod
    def _apply(customer: Customer, clean: Mapping[str, Any]) -> None:
        for name, value in clean.items():
            if name == "contacts":
                current = [{n: getattr(x, n) for n in _CONTACT_FIELDS} for x in customer.contacts]
                if value != current:
                    customer.contacts = [Contact(**c) for c in value]
            elif name != "code" or value:
                setattr(customer, name, value)

    @staticmethod
    def _check_unique(s: Session, clean: Mapping[str, Any], own_id: int | None) -> None:
        errors: dict[str, str] = {}
        if clean["tax_id"]:
            other = s.scalar(select(Customer).where(Customer.tax_id == clean["tax_id"]))
            if other is not None and other.id != own_id:
                errors["tax_id"] = f"a customer with this tax ID exists: {other.code} {other.name}"
        if clean["code"]:
            other = s.scalar(select(Customer).where(Customer.code == clean["code"]))
            if other is not None and other.id != own_id:
                errors["code"] = f"the code is taken by {other.code} {other.name}"
        if errors:
            raise ValidationError(errors)

    def _flush(self, s: Session, clean: Mapping[str, Any], own_id: int | None) -> None:
        """Flush; a unique violation from a concurrent insert becomes the same error."""
        try:
            s.flush()
        except IntegrityError:
            s.rollback()
            with self.app.engine.session_factory() as fresh:
                self._check_unique(fresh, clean, own_id)
            raise

    @staticmethod
    def _assign_code(s: Session, customer: Customer) -> None:
        """C + the id in 6 digits; skips numbers a hand-given code already took.

        A Core UPDATE so the row stays at version 1: creating is one change.
        """
        n = customer.id
        while s.scalar(select(Customer.id).where(Customer.code == f"C{n:06d}")) is not None:
            n += 1
        code = f"C{n:06d}"
        s.execute(update(_customers).where(_customers.c.id == customer.id).values(code=code))
        set_committed_value(customer, "code", code)
