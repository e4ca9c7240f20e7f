"""Products, prices, VAT rates and stock: reservations never oversell, even racing."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from order_flow.bootstrap import App
from order_flow.domain.taxid import compute_uscc_check
from order_flow.engine.actors import Actor
from order_flow.errors import NotFoundError, ValidationError
from order_flow.store.catalog import Product, Reservation, TaxRateRow
from order_flow.store.orders import Order, OrderLine
from tests.integration.helpers import add_user

TAX_CODE = "1090511030000000000"


@pytest.fixture
def clerk(app: App) -> Actor:
    return add_user(app, "alice")


def product(app: App, clerk: Actor, on_hand: str = "0", **overrides: Any) -> Product:
    data: dict[str, Any] = {
        "sku": "P-001",
        "name": "螺丝钉",
        "unit": "盒",
        "tax_code": TAX_CODE,
        "tax_category": "general_13",
        "price": "12.50",
        "on_hand": on_hand,
    }
    data.update(overrides)
    return app.catalog.create_product(data, clerk)


def order_with_lines(app: App, clerk: Actor, product_id: int, qtys: list[str]) -> list[int]:
    """An order row with one line per quantity, straight through the ORM; the line ids."""
    first17 = "91350100M000100Y4"
    with app.engine.session_factory() as s:
        customer_id = s.scalar(select(func.min(Order.customer_id)))
    if customer_id is None:
        customer_id = app.customers.create(
            {"name": "测试客户有限公司", "tax_id": first17 + compute_uscc_check(first17)}, clerk
        ).customer.id
    with app.engine.session_factory.begin() as s:
        count = s.scalar(select(func.count()).select_from(Order)) or 0
        order = Order(customer_id=customer_id, number=f"SO-{count + 1}", created_by=clerk.name)
        order.lines = [
            OrderLine(
                line_no=i,
                product_id=product_id,
                description="螺丝钉",
                qty=Decimal(q),
                unit_price=Decimal("12.50"),
                tax_category="general_13",
                tax_rate=Decimal("0.13"),
                net=Decimal("0"),
                tax=Decimal("0"),
                gross=Decimal("0"),
            )
            for i, q in enumerate(qtys, start=1)
        ]
        s.add(order)
        s.flush()
        return [line.id for line in order.lines]


def reserve(app: App, line_id: int, product_id: int, qty: str, partial: bool) -> Decimal:
    with app.engine.uow() as uow:
        got = app.catalog.reserve_in(uow, line_id, product_id, Decimal(qty), partial)
        uow.commit()
    return got


def release(app: App, line_id: int) -> Decimal:
    with app.engine.session_factory() as s:
        order_id = s.scalar(select(OrderLine.order_id).where(OrderLine.id == line_id))
    assert order_id is not None
    with app.engine.uow() as uow:
        released = app.catalog.release_order_in(uow, order_id)
        uow.commit()
    return released


def stock(app: App, product_id: int) -> tuple[Decimal, Decimal, Decimal]:
    """(on_hand, reserved, sum of active reservations)."""
    with app.engine.session_factory() as s:
        row = s.get_one(Product, product_id)
        active = s.scalar(
            select(func.coalesce(func.sum(Reservation.qty), 0)).where(
                Reservation.product_id == product_id, Reservation.status == "active"
            )
        )
        return row.on_hand, row.reserved, Decimal(active or 0)


def line_reserved(app: App, line_id: int) -> Decimal:
    with app.engine.session_factory() as s:
        return s.get_one(OrderLine, line_id).qty_reserved


def errors_of(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.errors


# -- rates -----------------------------------------------------------------------


def test_seeding_the_rate_table_is_idempotent_and_keeps_the_history(app: App) -> None:
    assert app.catalog.seed_tax_rates() == 10
    assert app.catalog.seed_tax_rates() == 0
    with app.engine.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(TaxRateRow)) == 10
        assert app.catalog.rate_for(s, "general_13", date(2019, 3, 31)).rate == Decimal("0.16")
        assert app.catalog.rate_for(s, "general_13", date(2024, 1, 1)).rate == Decimal("0.13")
        assert app.catalog.rate_for(s, "exempt", date(2024, 1, 1)).label == "免税"
        with pytest.raises(NotFoundError):
            app.catalog.rate_for(s, "small_scale_1", date(2028, 1, 1))


def test_a_rate_table_change_is_seen_after_invalidation(app: App) -> None:
    app.catalog.seed_tax_rates()
    with app.engine.session_factory.begin() as s:
        s.execute(
            update(TaxRateRow)
            .where(TaxRateRow.category == "general_6")
            .values(effective_to=date(2030, 12, 31))
        )
    app.catalog.invalidate_rates()
    with app.engine.session_factory() as s, pytest.raises(NotFoundError):
        app.catalog.rate_for(s, "general_6", date(2031, 1, 1))


# -- products ----------------------------------------------------------------------


def test_a_product_is_created_with_its_stock(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="20")
    got = app.catalog.get_product(made.id)
    assert (got.sku, got.price, got.on_hand, got.reserved) == ("P-001", Decimal("12.5"), 20, 0)
    assert app.catalog.list_products("螺丝")[1] == 1


def test_product_problems_are_reported_by_field_and_nothing_is_written(
    app: App, clerk: Actor
) -> None:
    data = {
        "sku": "",
        "name": "螺丝钉",
        "tax_code": "10905",
        "tax_category": "general_17",
        "price": "1.123456789",
        "price_includes_tax": "no",
        "on_hand": "-1",
    }
    errors = errors_of(lambda: app.catalog.create_product(data, clerk))
    assert set(errors) == {
        "sku",
        "tax_code",
        "tax_category",
        "price",
        "price_includes_tax",
        "on_hand",
    }
    assert app.catalog.list_products()[1] == 0


def test_an_empty_tax_code_is_allowed_until_invoicing(app: App, clerk: Actor) -> None:
    assert product(app, clerk, tax_code="").tax_code == ""


def test_a_taken_sku_is_refused(app: App, clerk: Actor) -> None:
    product(app, clerk)
    assert list(errors_of(lambda: product(app, clerk))) == ["sku"]


def test_update_changes_master_data_but_not_stock(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="5")
    updated = app.catalog.update_product(made.id, {"price": "13.00", "name": "螺钉"}, clerk)
    assert (updated.price, updated.name, updated.on_hand) == (Decimal("13"), "螺钉", 5)
    assert list(
        errors_of(lambda: app.catalog.update_product(made.id, {"on_hand": "9"}, clerk))
    ) == ["on_hand"]


# -- prices ------------------------------------------------------------------------


def test_price_lookup_takes_the_largest_min_qty_in_force_on_the_day(app: App, clerk: Actor) -> None:
    made = product(app, clerk)
    app.catalog.set_price("vip", made.id, "11.00", "0", date(2024, 1, 1))
    app.catalog.set_price("vip", made.id, "10.00", "100", date(2024, 1, 1))
    app.catalog.set_price("vip", made.id, "9.50", "100", date(2025, 1, 1))
    app.catalog.set_price("vip", made.id, "9.80", "100", date(2025, 1, 1))  # replaces 9.50

    def price(price_list: str | None, qty: str, on: date) -> tuple[Decimal, bool]:
        with app.engine.session_factory() as s:
            return app.catalog.price_for(s, made.id, price_list, Decimal(qty), on)

    assert price(None, "500", date(2025, 6, 1)) == (Decimal("12.5"), False)
    assert price("vip", "5", date(2023, 12, 31)) == (Decimal("12.5"), False)
    assert price("vip", "5", date(2024, 6, 1)) == (Decimal("11"), False)
    assert price("vip", "100", date(2024, 6, 1)) == (Decimal("10"), False)
    assert price("vip", "150", date(2025, 6, 1)) == (Decimal("9.8"), False)
    assert price("other", "150", date(2025, 6, 1)) == (Decimal("12.5"), False)


def test_a_price_list_price_is_validated(app: App, clerk: Actor) -> None:
    made = product(app, clerk)
    errors = errors_of(lambda: app.catalog.set_price("", made.id, "-1", "x"))
    assert set(errors) == {"price_list", "unit_price", "min_qty"}
    with pytest.raises(NotFoundError):
        app.catalog.set_price("vip", 999, "1")


# -- stock -------------------------------------------------------------------------


def test_receiving_adds_to_on_hand(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="2")
    assert app.catalog.receive(made.id, "3.5", clerk) == Decimal("5.5")
    assert list(errors_of(lambda: app.catalog.receive(made.id, "0", clerk))) == ["qty"]
    with pytest.raises(NotFoundError):
        app.catalog.receive(999, "1", clerk)


def test_complete_policy_reserves_all_or_nothing(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="5")
    big, small = order_with_lines(app, clerk, made.id, ["8", "5"])
    assert reserve(app, big, made.id, "8", partial=False) == 0
    assert stock(app, made.id) == (5, 0, 0)
    assert reserve(app, small, made.id, "5", partial=False) == 5
    assert stock(app, made.id) == (5, 5, 5)
    assert line_reserved(app, small) == 5


def test_partial_policy_reserves_what_is_available(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="5")
    (line,) = order_with_lines(app, clerk, made.id, ["8"])
    assert reserve(app, line, made.id, "8", partial=True) == 5
    assert stock(app, made.id) == (5, 5, 5)
    app.catalog.receive(made.id, "10", clerk)
    # The line still needs 3; asking for 8 again reserves only those.
    assert reserve(app, line, made.id, "8", partial=True) == 3
    assert line_reserved(app, line) == 8
    assert reserve(app, line, made.id, "8", partial=True) == 0


def test_release_is_idempotent(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="10")
    first, second = order_with_lines(app, clerk, made.id, ["3", "4"])
    reserve(app, first, made.id, "3", partial=False)
    reserve(app, second, made.id, "4", partial=False)
    assert release(app, first) == 7
    assert release(app, first) == 0
    assert stock(app, made.id) == (10, 0, 0)
    assert line_reserved(app, first) == line_reserved(app, second) == 0


def test_consuming_for_a_delivery_takes_reserved_stock_first(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="10")
    (line,) = order_with_lines(app, clerk, made.id, ["6"])
    reserve(app, line, made.id, "4", partial=False)
    with app.engine.uow() as uow:
        assert app.catalog.consume_in(uow, line, Decimal("3")) == 3
        uow.commit()
    assert stock(app, made.id) == (7, 1, 1)
    with app.engine.uow() as uow:
        assert app.catalog.consume_in(uow, line, Decimal("3")) == 1  # 2 from free stock
        uow.commit()
    assert stock(app, made.id) == (4, 0, 0)
    assert line_reserved(app, line) == 0
    with app.engine.uow() as uow:
        assert list(errors_of(lambda: app.catalog.consume_in(uow, line, Decimal("5")))) == ["qty"]
    assert stock(app, made.id) == (4, 0, 0)


def test_stale_reservations_are_released_by_age(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="10")
    old, new = order_with_lines(app, clerk, made.id, ["2", "3"])
    reserve(app, old, made.id, "2", partial=False)
    reserve(app, new, made.id, "3", partial=False)
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    with app.engine.session_factory.begin() as s:
        s.execute(
            update(Reservation)
            .where(Reservation.order_line_id == old)
            .values(created_at=cutoff - timedelta(hours=1))
        )
    assert app.catalog.release_stale(cutoff) == 1
    assert stock(app, made.id) == (10, 3, 3)
    assert app.catalog.release_stale(cutoff) == 0


def test_a_reservation_for_a_line_of_another_product_is_refused(app: App, clerk: Actor) -> None:
    made = product(app, clerk, on_hand="10")
    other = product(app, clerk, sku="P-002")
    (line,) = order_with_lines(app, clerk, made.id, ["1"])
    assert list(errors_of(lambda: reserve(app, line, other.id, "1", partial=False))) == [
        "product_id"
    ]


# -- races -------------------------------------------------------------------------


def race(n: int, action: Callable[[int], Decimal]) -> list[Decimal]:
    """Run ``action(i)`` in ``n`` threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Decimal:
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_fifty_concurrent_reservations_of_one_unit_against_twenty_reserve_exactly_twenty(
    app: App, clerk: Actor
) -> None:
    made = product(app, clerk, on_hand="20")
    lines = order_with_lines(app, clerk, made.id, ["1"] * 50)
    got = race(50, lambda i: reserve(app, lines[i], made.id, "1", partial=False))
    assert sorted(got) == [0] * 30 + [1] * 20
    assert stock(app, made.id) == (20, 20, 20)


def test_concurrent_partial_reservations_of_random_sizes_never_exceed_on_hand(
    app: App, clerk: Actor
) -> None:
    made = product(app, clerk, on_hand="20")
    rng = random.Random(7)
    wanted = [str(rng.randint(1, 4)) for _ in range(50)]
    lines = order_with_lines(app, clerk, made.id, wanted)
    got = race(50, lambda i: reserve(app, lines[i], made.id, wanted[i], partial=True))
    on_hand, reserved, active = stock(app, made.id)
    assert reserved <= on_hand == 20
    assert reserved == active == sum(got)
    assert all(0 <= g <= Decimal(w) for g, w in zip(got, wanted, strict=True))
    assert [line_reserved(app, line) for line in lines] == got
