"""Customer field rules and quantity parsing, without a database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_flow.domain.customer_rules import (
    CONTACT_MAX_CHARS,
    MAX_CHARS,
    clean_customer,
    decimal_places,
)
from order_flow.domain.taxid import USCC_ALPHABET, compute_uscc_check
from order_flow.errors import ValidationError
from order_flow.services.stock import parse_quantity
from order_flow.store.customers import Contact, Customer

VALID_USCC = "91350100M000100Y43"


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        clean_customer(data)
    return info.value.errors


def special(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "福州某某有限公司",
        "tax_id": VALID_USCC,
        "invoice_type": "special",
        "address": "福州市鼓楼区五四路1号",
        "phone": "0591-88880000",
        "bank": "中国工商银行福州分行",
        "account": "1402020000000000001",
    }
    data.update(overrides)
    return data


def test_the_character_limits_match_the_stored_columns() -> None:
    for name, limit in MAX_CHARS.items():
        assert Customer.__table__.c[name].type.length == limit, name  # type: ignore[attr-defined]
    for name, limit in CONTACT_MAX_CHARS.items():
        assert Contact.__table__.c[name].type.length == limit, name  # type: ignore[attr-defined]


def test_a_complete_special_customer_is_cleaned_with_defaults() -> None:
    clean = clean_customer(special(name="  福州某某有限公司 "))
    assert clean["name"] == "福州某某有限公司"
    assert clean["kind"] == "company"
    assert clean["credit_limit"] == Decimal("0")
    assert (clean["stock_policy"], clean["locale"], clean["payment_days"]) == (
        "partial",
        "zh_CN",
        30,
    )
    assert clean["contacts"] == []


def test_address_and_phone_are_limited_together_at_exactly_one_hundred_gbk_bytes() -> None:
    phone = "0591-88880000"  # 13 bytes
    fits = special(address="鼓" * 43 + "1", phone=phone)  # 87 + 13 = 100
    assert clean_customer(fits)["address"] == fits["address"]
    assert list(errors_of(special(address="鼓" * 44, phone=phone))) == ["address"]


def test_a_special_customer_names_every_missing_field() -> None:
    errors = errors_of({"invoice_type": "special"})
    assert set(errors) == {"name", "tax_id", "address", "phone", "bank", "account"}


def test_an_ordinary_individual_needs_no_tax_id_but_an_invalid_one_is_refused() -> None:
    person = {"name": "张三", "kind": "individual"}
    assert clean_customer(person)["tax_id"] is None
    assert list(errors_of({**person, "tax_id": "123"})) == ["tax_id"]


def test_a_money_limit_with_more_than_two_decimals_is_refused() -> None:
    assert list(errors_of(special(credit_limit="1.001"))) == ["credit_limit"]


def test_contacts_are_checked_by_position() -> None:
    errors = errors_of(special(contacts=[{"name": "林"}, {"name": "", "phone": "x" * 51}]))
    assert set(errors) == {"contacts[1].name", "contacts[1].phone"}


@given(st.text(alphabet=USCC_ALPHABET, min_size=16, max_size=16), st.sampled_from("159ANY"))
def test_any_code_with_a_correct_check_character_is_accepted(body: str, authority: str) -> None:
    first17 = authority + body
    code = first17 + compute_uscc_check(first17)
    assert clean_customer(special(tax_id=code))["tax_id"] == code


def test_decimal_places_counts_only_digits_after_the_point() -> None:
    assert [decimal_places(Decimal(s)) for s in ("1", "1.50", "1E+3", "0.00000001")] == [0, 2, 0, 8]


@pytest.mark.parametrize(
    ("raw", "positive", "message"),
    [
        ("0", True, "greater than 0"),
        ("-1", False, "negative"),
        ("0.000000001", False, "8 decimal"),
        ("11", False, "at most 10"),
        (0.5, False, "float"),
        ("abc", False, "not a number"),
    ],
)
def test_bad_quantities_are_reported_on_their_field(raw: Any, positive: bool, message: str) -> None:
    errors: dict[str, str] = {}
    parse_quantity(errors, "qty", raw, positive=positive, limit=Decimal("10"))
    assert message in errors["qty"]
