"""The quick-start demo data: a backlog in every interesting state, loaded once."""

from __future__ import annotations

from sqlalchemy import func, select

from order_flow.bootstrap import App
from order_flow.services.demo import USERS, demo_password, load_demo
from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from order_flow.store.models import User
from order_flow.store.orders import Order
from order_flow.store.tables import instances, tasks


def counts(app: App) -> dict[str, int]:
    with app.engine.session_factory() as s:
        rows = s.execute(
            select(instances.c.state, func.count())
            .where(instances.c.workflow == "order")
            .group_by(instances.c.state)
        ).all()
    return {str(state): int(n) for state, n in rows}


def test_the_demo_makes_orders_in_every_state_a_clerk_works_on(app: App) -> None:
    result = load_demo(app)
    assert result.loaded
    assert counts(app) == {
        "approved": 5,
        "on_hold": 7,
        "feasibility": 1,
        "review": 3,
        "draft": 2,
    }
    assert {state: len(numbers) for state, numbers in result.orders.items()} == counts(app)


def test_the_demo_holds_one_order_for_each_hold_reason(app: App) -> None:
    load_demo(app)
    with app.engine.session_factory() as s:
        reasons = set(
            s.scalars(
                select(Order.hold_reason)
                .join(instances, instances.c.id == Order.instance_id)
                .where(instances.c.state == "on_hold")
            )
        )
        urgent_held = s.scalar(
            select(func.count())
            .select_from(Order)
            .join(instances, instances.c.id == Order.instance_id)
            .where(instances.c.state == "on_hold", Order.priority == "urgent")
        )
    assert reasons == {"DATA", "DUPLICATE", "CREDIT", "STOCK_SHORT", "CUSTOMER_BLOCKED", "SPECIAL"}
    assert urgent_held == 1


def test_the_demo_invoices_approved_orders_and_shows_one_problem_invoice(app: App) -> None:
    load_demo(app)
    with app.engine.session_factory() as s:
        states = dict(
            s.execute(
                select(instances.c.state, func.count())
                .where(instances.c.workflow == "invoice")
                .group_by(instances.c.state)
            ).all()
        )
        open_tasks = s.scalar(
            select(func.count()).select_from(tasks).where(tasks.c.status == "open")
        )
    assert states.get("problem") == 1
    assert sum(states.values()) == 5
    assert open_tasks == 12  # 7 holds, 1 sign-off, 3 reviews, 1 problem invoice


def test_every_demo_user_can_log_in_with_the_printed_password(app: App) -> None:
    result = load_demo(app)
    assert [u for u, _, _ in result.users] == [u for u, *_ in USERS]
    for username, role, password in result.users:
        assert password == demo_password(username)
        user = app.users.check_password(username, password)
        assert user is not None and user.role == role
    assert {r for _, r, _ in result.users} == {"clerk", "supervisor", "admin"}


def test_loading_the_demo_twice_changes_nothing(app: App) -> None:
    load_demo(app)
    before = counts(app)

    def totals() -> tuple[int, ...]:
        with app.engine.session_factory() as s:
            return tuple(
                int(s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (User, Customer, Product, Order)
            )

    rows = totals()
    again = load_demo(app)
    assert not again.loaded and again.users == []
    assert counts(app) == before
    assert totals() == rows
