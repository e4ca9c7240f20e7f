"""Customers: validation by field, tax-ID uniqueness, duplicate warnings, contact log."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.domain.taxid import compute_id_card_check, compute_uscc_check
from order_flow.engine.actors import Actor
from order_flow.errors import ConflictError, NotFoundError, OrderFlowError, ValidationError
from order_flow.store.customers import Communication, Contact, Customer
from tests.integration.helpers import add_user


def uscc(first17: str) -> str:
    return first17 + compute_uscc_check(first17)


def id_card(first17: str = "11010519491231002") -> str:
    return first17 + compute_id_card_check(first17)


def special(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "福州某某有限公司",
        "kind": "company",
        "tax_id": uscc("91350100M000100Y4"),
        "invoice_type": "special",
        "address": "福州市鼓楼区五四路1号",
        "phone": "0591-88880000",
        "bank": "中国工商银行福州分行",
        "account": "1402020000000000001",
        "credit_limit": "50000.00",
        "contacts": [{"name": "林经理", "phone": "13800000000", "role": "采购"}],
    }
    data.update(overrides)
    return data


def errors_of(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.errors


def counts(app: App) -> tuple[int, int]:
    with app.engine.session_factory() as s:
        customers = s.scalar(select(func.count()).select_from(Customer)) or 0
        contacts = s.scalar(select(func.count()).select_from(Contact)) or 0
    return customers, contacts


@pytest.fixture
def clerk(app: App) -> Actor:
    return add_user(app, "alice")


def test_a_special_invoice_customer_is_created_with_a_generated_code(
    app: App, clerk: Actor
) -> None:
    created = app.customers.create(special(), clerk)
    customer = app.customers.get(created.customer.id)
    assert created.warnings == []
    assert customer.code == f"C{customer.id:06d}"
    assert customer.version == 1
    assert customer.tax_id == "91350100M000100Y43"
    assert customer.credit_limit == Decimal("50000.00")
    assert customer.name_key == "福州某某有限公司"
    assert [c.name for c in customer.contacts] == ["林经理"]


@pytest.mark.parametrize("first17", ["A1350100MA2Y00001", "N2110000MA0000000", "Y1440300MA5F00000"])
def test_codes_with_letters_in_the_first_eight_positions_are_accepted(
    app: App, clerk: Actor, first17: str
) -> None:
    created = app.customers.create(special(tax_id=uscc(first17)), clerk)
    assert created.customer.tax_id == uscc(first17)


def test_a_full_width_tax_id_with_spaces_is_stored_normalised(app: App, clerk: Actor) -> None:
    full_width = "９１３５ ０１００-Ｍ０００１００Ｙ４３".lower()
    created = app.customers.create(special(tax_id=full_width), clerk)
    assert created.customer.tax_id == "91350100M000100Y43"


def test_a_wrong_check_character_is_refused_on_the_tax_id_field(app: App, clerk: Actor) -> None:
    errors = errors_of(lambda: app.customers.create(special(tax_id="91350100M000100Y44"), clerk))
    assert list(errors) == ["tax_id"]
    assert "check character" in errors["tax_id"]


def test_gbk_limits_are_reported_on_name_address_and_bank_all_at_once(
    app: App, clerk: Actor
) -> None:
    data = special(
        name="福" * 51,  # 102 bytes
        address="鼓" * 44,  # 88 bytes + 13 for the phone
        bank="银" * 45,  # 90 bytes + 19 for the account
    )
    errors = errors_of(lambda: app.customers.create(data, clerk))
    assert set(errors) == {"name", "address", "bank"}
    assert "102 GBK bytes" in errors["name"]
    assert "101 GBK bytes" in errors["address"]
    assert "109 GBK bytes" in errors["bank"]
    assert counts(app) == (0, 0)


def test_a_character_outside_gbk_is_refused_by_field(app: App, clerk: Actor) -> None:
    errors = errors_of(lambda: app.customers.create(special(name="福州🙂有限公司"), clerk))
    assert "not in GBK" in errors["name"]


def test_a_special_customer_needs_bank_and_account(app: App, clerk: Actor) -> None:
    errors = errors_of(lambda: app.customers.create(special(bank="", account=""), clerk))
    assert set(errors) == {"bank", "account"}
    assert "专票" in errors["bank"]


def test_an_individual_may_leave_the_tax_id_out_for_ordinary_invoices(
    app: App, clerk: Actor
) -> None:
    person = {"name": "张三", "kind": "individual", "invoice_type": "ordinary"}
    assert app.customers.create(person, clerk).customer.tax_id is None
    second = app.customers.create({**person, "name": "李四"}, clerk)
    assert second.customer.tax_id is None  # no tax ID does not clash with no tax ID


def test_a_company_needs_a_tax_id_even_for_ordinary_invoices(app: App, clerk: Actor) -> None:
    errors = errors_of(
        lambda: app.customers.create({"name": "某某公司", "invoice_type": "ordinary"}, clerk)
    )
    assert list(errors) == ["tax_id"]


def test_an_individual_tax_id_must_be_a_valid_id_card(app: App, clerk: Actor) -> None:
    person = {"name": "张三", "kind": "individual", "invoice_type": "ordinary"}
    created = app.customers.create({**person, "tax_id": id_card().lower()}, clerk)
    assert created.customer.tax_id == id_card()
    bad = id_card()[:17] + ("0" if id_card()[17] != "0" else "1")
    errors = errors_of(lambda: app.customers.create({**person, "tax_id": bad}, clerk))
    assert "check character" in errors["tax_id"]


def test_other_fields_are_checked_by_name(app: App, clerk: Actor) -> None:
    data = special(
        kind="robot",
        credit_limit="-1",
        stock_policy="some",
        locale="fr",
        blocked="yes",
        payment_days=-3,
        email="nobody",
        contacts=[{"name": ""}],
    )
    errors = errors_of(lambda: app.customers.create(data, clerk))
    assert set(errors) >= {
        "kind",
        "credit_limit",
        "stock_policy",
        "locale",
        "blocked",
        "payment_days",
        "email",
        "contacts[0].name",
    }


def test_a_float_credit_limit_is_refused(app: App, clerk: Actor) -> None:
    errors = errors_of(lambda: app.customers.create(special(credit_limit=0.1), clerk))
    assert "float" in errors["credit_limit"]


def test_a_duplicate_tax_id_is_refused_naming_the_customer_and_nothing_is_written(
    app: App, clerk: Actor
) -> None:
    first = app.customers.create(special(), clerk).customer
    before = counts(app)
    errors = errors_of(lambda: app.customers.create(special(name="另一家公司"), clerk))
    assert errors == {
        "tax_id": f"a customer with this tax ID exists: {first.code} 福州某某有限公司"
    }
    assert counts(app) == before


def test_concurrent_creates_with_one_tax_id_leave_one_customer(app: App, clerk: Actor) -> None:
    barrier = threading.Barrier(4)

    def create(i: int) -> object:
        barrier.wait()
        try:
            return app.customers.create(special(name=f"并发公司{i}"), clerk)
        except OrderFlowError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(create, range(4)))
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 3, results
    assert all(set(r.errors) == {"tax_id"} for r in refused)
    assert counts(app)[0] == 1


def test_a_similar_name_warns_but_does_not_block(app: App, clerk: Actor) -> None:
    existing = app.customers.create(special(), clerk).customer
    other = special(name="福州某某有限责任公司", tax_id=uscc("91350100M000200Y4"))
    created = app.customers.create(other, clerk)
    assert created.warnings == [f"similar to existing customer {existing.code} 福州某某有限公司"]
    assert counts(app)[0] == 2


def test_a_fuzzy_match_is_found_beyond_the_normalised_equality(app: App, clerk: Actor) -> None:
    app.customers.create(special(name="福州市某某贸易有限公司"), clerk)
    assert [c.name for c in app.customers.find_similar("福州市某某贸易有限公司 ")] == [
        "福州市某某贸易有限公司"
    ]
    assert [c.name for c in app.customers.find_similar("福州市某某商贸有限公司")] == [
        "福州市某某贸易有限公司"
    ]
    assert app.customers.find_similar("厦门完全不同科技有限公司") == []


def test_update_changes_the_given_fields_and_keeps_the_rest(app: App, clerk: Actor) -> None:
    customer = app.customers.create(special(), clerk).customer
    updated = app.customers.update(
        customer.id, {"phone": "0591-12345678"}, clerk, expected_version=1
    )
    assert (updated.phone, updated.bank, updated.version) == (
        "0591-12345678",
        "中国工商银行福州分行",
        2,
    )
    assert [c.name for c in app.customers.get(customer.id).contacts] == ["林经理"]


def test_update_is_validated_like_create(app: App, clerk: Actor) -> None:
    customer = app.customers.create(special(), clerk).customer
    errors = errors_of(lambda: app.customers.update(customer.id, {"account": ""}, clerk))
    assert list(errors) == ["account"]
    assert app.customers.get(customer.id).version == 1


def test_update_with_a_stale_version_is_a_conflict(app: App, clerk: Actor) -> None:
    customer = app.customers.create(special(), clerk).customer
    app.customers.update(customer.id, {"phone": "0591-1"}, clerk, expected_version=1)
    with pytest.raises(ConflictError):
        app.customers.update(customer.id, {"phone": "0591-2"}, clerk, expected_version=1)
    assert app.customers.get(customer.id).phone == "0591-1"


def test_two_concurrent_updates_from_one_version_one_wins(app: App, clerk: Actor) -> None:
    customer = app.customers.create(special(), clerk).customer
    barrier = threading.Barrier(2)

    def update(i: int) -> object:
        barrier.wait()
        try:
            return app.customers.update(
                customer.id, {"phone": f"0591-{i}"}, clerk, expected_version=1
            )
        except OrderFlowError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(update, range(2)))
    assert sum(isinstance(r, ConflictError) for r in results) == 1, results
    assert app.customers.get(customer.id).version == 2


def test_get_of_a_missing_customer_is_not_found(app: App) -> None:
    with pytest.raises(NotFoundError):
        app.customers.get(999)


def test_list_searches_name_code_and_tax_id(app: App, clerk: Actor) -> None:
    a = app.customers.create(special(), clerk).customer
    app.customers.create(
        special(name="厦门另一家有限公司", tax_id=uscc("91350200M000100Y4")), clerk
    )
    rows, total = app.customers.list("某某")
    assert ([c.id for c in rows], total) == ([a.id], 1)
    assert app.customers.list(a.tax_id)[1] == 1
    assert app.customers.list(a.code.lower())[1] == 1
    rows, total = app.customers.list(None, limit=1, offset=1)
    assert (len(rows), total) == (1, 2)


def test_the_contact_log_lists_newest_first_and_a_dedupe_key_logs_once(
    app: App, clerk: Actor
) -> None:
    customer = app.customers.create(special(), clerk).customer
    app.customers.log_contact(customer.id, "phone", "in", "客户来电询问交期", clerk)
    first = app.customers.log_contact(
        customer.id, "email", "out", "发票已发送", clerk, dedupe_key="job-7"
    )
    again = app.customers.log_contact(
        customer.id, "email", "out", "发票已发送", clerk, dedupe_key="job-7"
    )
    assert again.id == first.id
    log = app.customers.communications(customer.id)
    assert [c.summary for c in log] == ["发票已发送", "客户来电询问交期"]
    assert log[0].actor == "alice"
    with app.engine.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Communication)) == 2


def test_a_contact_needs_a_known_channel_direction_and_a_summary(app: App, clerk: Actor) -> None:
    customer = app.customers.create(special(), clerk).customer
    errors = errors_of(lambda: app.customers.log_contact(customer.id, "fax", "up", " ", clerk))
    assert set(errors) == {"channel", "direction", "summary"}
    errors = errors_of(
        lambda: app.customers.log_contact(customer.id, "phone", "in", "x", clerk, order_id=42)
    )
    assert list(errors) == ["order_id"]
    with pytest.raises(NotFoundError):
        app.customers.log_contact(999, "phone", "in", "x", clerk)


def test_concurrent_logs_with_one_dedupe_key_write_one_row(app: App, clerk: Actor) -> None:
    customer = app.customers.create(special(), clerk).customer
    barrier = threading.Barrier(4)

    def log(_: int) -> int:
        barrier.wait()
        row = app.customers.log_contact(
            customer.id, "email", "out", "订单已审核", clerk, dedupe_key="notify-1"
        )
        return row.id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(log, range(4)))
    assert len(ids) == 1
    assert len(app.customers.communications(customer.id)) == 1
