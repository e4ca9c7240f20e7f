"""The automated checks of a submitted order: one test per hold reason, the special-order
sign-off (会签), double review (双重审核), and what happens after a hold."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.errors import PermissionDeniedError, TransitionNotAllowedError
from order_flow.services.checks import exposure
from order_flow.store.customers import Customer
from order_flow.store.invoices import Invoice, Payment
from order_flow.store.orders import Order
from order_flow.store.tables import instances, tasks
from tests.integration.order_helpers import (
    People,
    customer,
    order_body,
    people,
    product,
    reload,
    state,
    stock,
    submit,
    triggers,
    work,
)


@pytest.fixture
def who(app: App) -> People:
    return people(app)


def templated(app: App, who: People, customer_id: int, *lines: tuple[int, str]) -> Order:
    """An order made from a template (no double review below the amount)."""
    items = [{"product_id": pid, "qty": qty} for pid, qty in lines]
    template = app.orders.create_template(customer_id, "常用", items, who.alice)
    return app.orders.from_template(template.id, who.alice)


def held(app: App, order: Order) -> tuple[str, str | None, str | None]:
    """(state, hold reason, hold detail); the instance context agrees with the order."""
    o = reload(app, order)
    with app.engine.session_factory() as s:
        context = s.scalar(select(instances.c.context).where(instances.c.id == o.instance_id))
    assert (context or {}).get("hold_reason") == (o.hold_reason or "")
    return state(app, order), o.hold_reason, o.hold_detail


def no_review_without_template(app: App) -> None:
    app.settings = dataclasses.replace(app.settings, double_review_without_template=False)


# -- one test per hold reason ----------------------------------------------------------------


def test_a_blocked_customer_holds_the_order_with_customer_blocked(app: App, who: People) -> None:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    order = templated(app, who, c.id, (p.id, "1"))
    app.customers.update(c.id, {"blocked": True}, who.boss)
    assert submit(app, order, who.alice) == "on_hold"
    assert held(app, order)[1] == "CUSTOMER_BLOCKED"


def test_a_product_made_inactive_after_entry_holds_the_order_with_data(
    app: App, who: People
) -> None:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    order = templated(app, who, c.id, (p.id, "1"))
    app.catalog.update_product(p.id, {"active": False}, who.boss)
    assert submit(app, order, who.alice) == "on_hold"
    _, reason, detail = held(app, order)
    assert reason == "DATA" and detail is not None and "第 1 行" in detail


def test_a_special_invoice_customer_missing_bank_details_holds_the_order_with_data(
    app: App, who: People
) -> None:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    with app.engine.uow() as uow:  # data that predates the customer rules
        uow.session.execute(
            update(Customer).where(Customer.id == c.id).values(invoice_type="special")
        )
        uow.commit()
    order = templated(app, who, c.id, (p.id, "1"))
    assert submit(app, order, who.alice) == "on_hold"
    _, reason, detail = held(app, order)
    assert reason == "DATA" and "开户行" in (detail or "")


def test_the_same_customer_po_twice_holds_the_second_order_as_a_duplicate(
    app: App, who: People
) -> None:
    c = customer(app, who.alice)
    p, q = product(app, who.alice), product(app, who.alice)
    no_review_without_template(app)
    first = app.orders.create(order_body(c.id, (p.id, "1"), customer_po="PO-77"), who.alice)
    assert submit(app, first, who.alice) == "approved"
    second = app.orders.create(order_body(c.id, (q.id, "5"), customer_po="PO-77"), who.alice)
    assert submit(app, second, who.alice) == "on_hold"
    _, reason, detail = held(app, second)
    assert reason == "DUPLICATE" and first.number in (detail or "")


def test_a_cancelled_order_with_the_same_po_is_no_duplicate(app: App, who: People) -> None:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    no_review_without_template(app)
    first = app.orders.create(order_body(c.id, (p.id, "1"), customer_po="PO-78"), who.alice)
    submit(app, first, who.alice)
    app.orders.cancel(first.id, who.alice, "录错了")
    second = app.orders.create(order_body(c.id, (p.id, "1"), customer_po="PO-78"), who.alice)
    assert submit(app, second, who.alice) == "approved"


def test_the_same_lines_without_a_po_within_the_window_are_a_duplicate(
    app: App, who: People
) -> None:
    c = customer(app, who.alice)
    p, q = product(app, who.alice), product(app, who.alice)
    first = templated(app, who, c.id, (p.id, "2"), (q.id, "3"))
    assert submit(app, first, who.alice) == "approved"
    second = templated(app, who, c.id, (q.id, "3.000"), (p.id, "2"))  # same lines, any order
    assert submit(app, second, who.alice) == "on_hold"
    assert held(app, second)[1] == "DUPLICATE"


def test_the_same_lines_outside_the_window_or_other_quantities_pass(app: App, who: People) -> None:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    first = templated(app, who, c.id, (p.id, "2"))
    submit(app, first, who.alice)
    hours = app.settings.duplicate_window_hours + 1
    with app.engine.uow() as uow:
        uow.session.execute(
            update(Order)
            .where(Order.id == first.id)
            .values(created_at=first.created_at - timedelta(hours=hours))
        )
        uow.commit()
    later = templated(app, who, c.id, (p.id, "2"))
    assert submit(app, later, who.alice) == "approved"
    other_qty = templated(app, who, c.id, (p.id, "4"))
    assert submit(app, other_qty, who.alice) == "approved"


def test_an_order_above_the_credit_limit_is_held_with_credit(app: App, who: People) -> None:
    c = customer(app, who.alice, credit_limit="500")
    p = product(app, who.alice, price="100")
    order = templated(app, who, c.id, (p.id, "5"))  # 565.00 gross
    assert submit(app, order, who.alice) == "on_hold"
    _, reason, detail = held(app, order)
    assert reason == "CREDIT" and detail == "信用敞口 565.00 超过信用额度 500.00"


def test_credit_exposure_counts_approved_unbilled_orders_and_open_receivables(
    app: App, who: People
) -> None:
    c = customer(app, who.alice, credit_limit="1000")
    p, q = product(app, who.alice, price="100"), product(app, who.alice, price="100")
    first = templated(app, who, c.id, (p.id, "5"))  # 565.00, approved, invoice pending
    assert submit(app, first, who.alice) == "approved"
    with app.engine.session_factory() as s:
        assert exposure(s, c.id) == Decimal("565.00")
    with app.engine.uow() as uow:  # issue it and let the customer pay 100
        s = uow.session
        invoice = s.scalars(select(Invoice).where(Invoice.order_id == first.id)).one()
        invoice.number = 1
        s.add(Payment(invoice_id=invoice.id, amount=Decimal("100"), paid_on=first.created_at.date(),
                      recorded_by="boss"))  # fmt: skip
        uow.commit()
    with app.engine.session_factory() as s:
        assert exposure(s, c.id) == Decimal("465.00")
    second = templated(app, who, c.id, (q.id, "5"))  # 465 + 565 > 1000
    assert submit(app, second, who.alice) == "on_hold"
    assert held(app, second)[1] == "CREDIT"


def test_a_credit_limit_of_zero_allows_no_credit(app: App, who: People) -> None:
    c = customer(app, who.alice, credit_limit="0")
    p = product(app, who.alice, price="1")
    order = templated(app, who, c.id, (p.id, "1"))
    assert submit(app, order, who.alice) == "on_hold"
    assert held(app, order)[1] == "CREDIT"


def test_a_complete_policy_customer_short_of_stock_is_held_with_stock_short(
    app: App, who: People
) -> None:
    c = customer(app, who.alice, stock_policy="complete")
    p = product(app, who.alice, on_hand="5")
    order = templated(app, who, c.id, (p.id, "3"), (p.id, "3"))  # 6 of one product
    assert submit(app, order, who.alice) == "on_hold"
    assert held(app, order)[1] == "STOCK_SHORT"
    assert stock(app, p.id) == (Decimal("5"), Decimal("0"))


def test_a_partial_policy_customer_short_of_stock_passes_and_reserves_what_there_is(
    app: App, who: People
) -> None:
    c = customer(app, who.alice, stock_policy="partial")
    p = product(app, who.alice, on_hand="4")
    order = templated(app, who, c.id, (p.id, "10"))
    assert submit(app, order, who.alice) == "approved"
    assert reload(app, order).lines[0].qty_reserved == Decimal("4")
    assert stock(app, p.id) == (Decimal("4"), Decimal("4"))


# -- after a hold ------------------------------------------------------------------------------


def test_a_recheck_after_the_cause_is_fixed_approves(app: App, who: People) -> None:
    c = customer(app, who.alice, credit_limit="100")
    p = product(app, who.alice, price="100")
    order = templated(app, who, c.id, (p.id, "1"))
    assert submit(app, order, who.alice) == "on_hold"
    app.customers.update(c.id, {"credit_limit": "1000"}, who.boss)
    app.engine.fire(reload(app, order).instance_id or 0, "recheck", who.bob)
    work(app)
    assert state(app, order) == "approved"
    assert reload(app, order).hold_reason is None


def test_a_supervisor_overrides_a_hold_with_a_reason(app: App, who: People) -> None:
    c = customer(app, who.alice, credit_limit="0")
    p = product(app, who.alice, price="1")
    order = templated(app, who, c.id, (p.id, "1"))
    submit(app, order, who.alice)
    instance_id = reload(app, order).instance_id or 0
    with pytest.raises(PermissionDeniedError):
        app.engine.fire(instance_id, "override", who.bob, reason="老客户")
    app.engine.fire(instance_id, "override", who.boss, reason="老客户, 先发货")
    work(app)
    assert state(app, order) == "approved"
    assert reload(app, order).lines[0].qty_reserved == Decimal("1")


# -- special orders: 会签 ----------------------------------------------------------------------


def special_order(app: App, who: People) -> Order:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    body = order_body(c.id, (p.id, "1"), special=True, signoff_groups=["warehouse", "production"])
    order = app.orders.create(body, who.alice)
    assert submit(app, order, who.alice) == "feasibility"
    return order


def sign(app: App, order: Order, actor: Actor, outcome: str = "approve") -> None:
    with app.engine.session_factory() as s:
        task_id = s.scalar(
            select(tasks.c.id).where(
                tasks.c.instance_id == order.instance_id, tasks.c.status == "open"
            )
        )
    assert task_id is not None
    app.tasks.complete(task_id, outcome, actor, comment="做不了" if outcome == "reject" else None)


def test_a_special_order_is_approved_when_warehouse_and_production_have_signed(
    app: App, who: People
) -> None:
    order = special_order(app, who)
    sign(app, order, who.picker)
    assert state(app, order) == "feasibility"
    sign(app, order, who.maker)
    work(app)
    assert state(app, order) == "approved"
    assert triggers(app, order)[-3:] == ["needs_feasibility", "sign_off", "sign_off"]


def test_one_rejected_sign_off_puts_a_special_order_on_hold(app: App, who: People) -> None:
    order = special_order(app, who)
    sign(app, order, who.picker)
    sign(app, order, who.maker, "reject")
    assert held(app, order)[:2] == ("on_hold", "SPECIAL")


def test_the_creator_cannot_sign_off_their_own_order(app: App, who: People) -> None:
    order = special_order(app, who)  # alice is in warehouse too
    with pytest.raises(TransitionNotAllowedError, match="reviewer_not_creator"):
        app.engine.fire(order.instance_id or 0, "sign_off", who.alice)
    assert state(app, order) == "feasibility"


# -- double review: 双重审核 -----------------------------------------------------------------


def big_order(app: App, who: People) -> Order:
    c = customer(app, who.alice)
    p = product(app, who.alice, price="50000")
    order = templated(app, who, c.id, (p.id, "1"))  # 56,500.00 >= 50,000.00
    assert submit(app, order, who.alice) == "review"
    return order


def test_an_order_above_the_review_amount_needs_two_different_approvers(
    app: App, who: People
) -> None:
    order = big_order(app, who)
    instance_id = order.instance_id or 0
    app.engine.fire(instance_id, "review_approve", who.bob)
    assert state(app, order) == "review"
    app.engine.fire(instance_id, "review_approve", who.carol)
    work(app)
    assert state(app, order) == "approved"


def test_the_same_reviewer_cannot_approve_twice(app: App, who: People) -> None:
    order = big_order(app, who)
    app.engine.fire(order.instance_id or 0, "review_approve", who.bob)
    with pytest.raises(TransitionNotAllowedError, match="first_approval_by_actor"):
        app.engine.fire(order.instance_id or 0, "review_approve", who.bob)
    assert state(app, order) == "review"


def test_the_creator_cannot_review_their_own_order(app: App, who: People) -> None:
    order = big_order(app, who)
    with pytest.raises(TransitionNotAllowedError, match="reviewer_not_creator"):
        app.engine.fire(order.instance_id or 0, "review_approve", who.alice)


def test_an_order_not_made_from_a_template_goes_to_review(app: App, who: People) -> None:
    c = customer(app, who.alice)
    p = product(app, who.alice)
    order = app.orders.create(order_body(c.id, (p.id, "1")), who.alice)
    assert submit(app, order, who.alice) == "review"
