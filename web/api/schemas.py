"""Request models: the shape of every body and query string the API accepts.

They check types, enumerations and lengths and refuse unknown fields; the
services then check the business rules (tax IDs, GBK lengths, stock, credit)
and name the field of any problem. Amounts are decimal text, never floats.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

#: Ids are 32-bit in every table; larger ones cannot exist (and PostgreSQL would refuse them).
MAX_ID = 2**31 - 1
MAX_LIMIT = 200
MAX_OFFSET = 10**9
_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,10})?")
DECIMAL_PATTERN = r"^-?[0-9]{1,18}(\.[0-9]{1,10})?$"


def _decimal_text(value: object) -> str:
    """Accept "12.50" or an integer; refuse floats, so no amount is ever rounded in JSON."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_text", "must be a decimal number written as text")
    if isinstance(value, float):
        raise PydanticCustomError("decimal_float", 'use a string for decimal amounts, like "12.50"')
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value.strip()):
        raise PydanticCustomError(
            "decimal_text", 'must be a decimal number written as text, like "12.50"'
        )
    return value.strip()


DecimalText = Annotated[
    str,
    BeforeValidator(_decimal_text),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DECIMAL_PATTERN,
            "description": "A decimal number as text (an integer is accepted; a float is not).",
            "examples": ["12.50"],
        },
        mode="validation",
    ),
]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- customers ----------------------------------------------------------------------


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(default="", max_length=50)
    email: str = Field(default="", max_length=200)
    role: str = Field(default="", max_length=50)


class CustomerIn(Strict):
    """A new customer. A company needs its 统一社会信用代码 as tax_id; a 专票 customer
    needs address, phone, bank and account too. Name, address+phone and bank+account
    are each limited to 100 GBK bytes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "福州示例贸易有限公司",
                    "tax_id": "91350100M000100Y43",
                    "credit_limit": "50000",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=100)
    code: str | None = Field(default=None, max_length=32, description="Generated if left out")
    kind: Literal["company", "individual"] = "company"
    invoice_type: Literal["special", "ordinary"] = "ordinary"
    tax_id: str | None = Field(default=None, max_length=32)
    address: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=50)
    bank: str = Field(default="", max_length=100)
    account: str = Field(default="", max_length=50)
    email: str = Field(default="", max_length=200)
    credit_limit: DecimalText = "0"
    stock_policy: Literal["partial", "complete"] = "partial"
    blocked: bool = False
    locale: Literal["zh_CN", "en"] = "zh_CN"
    notify_by_email: bool = True
    payment_days: int = Field(default=30, ge=0, le=3650)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)


# -- products -----------------------------------------------------------------------


class ProductIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sku": "A-100",
                    "name": "办公椅",
                    "price": "350.00",
                    "tax_code": "1060512000000000000",
                    "on_hand": "20",
                }
            ]
        },
    )

    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    unit: str = Field(default="个", min_length=1, max_length=16)
    tax_code: str = Field(default="", max_length=40, description="税收分类编码, 19 digits")
    tax_category: str = Field(default="general_13", min_length=1, max_length=32)
    price: DecimalText = "0"
    price_includes_tax: bool = False
    active: bool = True
    on_hand: DecimalText = Field(default="0", description="Opening stock")


# -- orders -------------------------------------------------------------------------


class OrderLineIn(Strict):
    product_id: Id
    qty: DecimalText
    unit_price: DecimalText | None = Field(
        default=None, description="Left out: the customer's list price or the product price"
    )
    description: str | None = Field(default=None, max_length=200)


class OrderIn(Strict):
    """A new draft order. Send an ``Idempotency-Key`` header to make retries safe."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 1,
                    "customer_po": "PO-2026-001",
                    "priority": "high",
                    "lines": [{"product_id": 1, "qty": "2"}, {"product_id": 2, "qty": "1.5"}],
                }
            ]
        },
    )

    customer_id: Id
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    pricing: Literal["exclusive", "inclusive"] = "exclusive"
    priority: Literal["urgent", "high", "normal", "low"] = "normal"
    promised_date: date | None = None
    customer_po: str | None = Field(default=None, max_length=64)
    notes: str = Field(default="", max_length=2000)
    special: bool = False
    signoff_groups: list[Literal["warehouse", "production", "logistics"]] = Field(
        default_factory=list, max_length=3
    )


class SubmitIn(Strict):
    expected_version: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The order version you saw; 409 if it moved"
    )


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


# -- invoices and tasks -------------------------------------------------------------


class PaymentIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": "113.00", "paid_on": "2026-03-31", "reference": "BANK-20260331-01"}
            ]
        },
    )

    amount: DecimalText = Field(description="Gross amount received, in yuan with 2 decimals")
    paid_on: date
    reference: str | None = Field(default=None, max_length=64, description="Bank reference")
    method: str = Field(default="transfer", min_length=1, max_length=16)
    note: str = Field(default="", max_length=500)


class CompleteIn(Strict):
    outcome: str = Field(min_length=1, max_length=64)
    comment: str | None = Field(default=None, max_length=2000)


# -- query strings ------------------------------------------------------------------


class PageQuery(Strict):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class SearchQuery(PageQuery):
    q: str | None = Field(default=None, max_length=100, description="Search text")


class OrderQuery(SearchQuery):
    customer_id: Id | None = None
    state: str | None = Field(default=None, max_length=32)
    priority: Literal["urgent", "high", "normal", "low"] | None = None


class InvoiceQuery(PageQuery):
    state: str | None = Field(default=None, max_length=32)
    customer_id: Id | None = None
    order_id: Id | None = None
    bucket: Literal["pending", "issued", "problem"] | None = None


class TaskQuery(PageQuery):
    mine: bool = Field(default=False, description="Only tasks assigned to me")


class WhyQuery(Strict):
    lang: Literal["zh", "en"] = "zh"
