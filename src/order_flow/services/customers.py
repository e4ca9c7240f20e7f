"""Customers: validated master data, duplicate warnings and the communication log."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from order_flow.domain.customer_rules import (
    CONTACT_FIELDS,
    OTHER_FIELDS,
    TEXT_FIELDS,
    clean_customer,
)
from order_flow.domain.text import fuzzy_matches, normalize_company_name
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

CHANNELS = ("email", "phone", "wechat", "visit", "letter", "other")
DIRECTIONS = ("in", "out")
#: Fuzzy candidates read per name (same first two normalised characters).
FUZZY_CANDIDATES = 200

_customers = cast(Table, Customer.__table__)


@dataclass
class CustomerCreated:
    customer: Customer
    warnings: list[str] = field(default_factory=list)


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
                    Customer.code.icontains(term, autoescape=True),
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
        data: dict[str, Any] = {name: getattr(c, name) for name in TEXT_FIELDS + OTHER_FIELDS}
        data["contacts"] = [{n: getattr(x, n) for n in CONTACT_FIELDS} for x in c.contacts]
        return data

    @staticmethod
    def _apply(customer: Customer, clean: Mapping[str, Any]) -> None:
        for name, value in clean.items():
            if name == "contacts":
                current = [{n: getattr(x, n) for n in CONTACT_FIELDS} for x in customer.contacts]
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
