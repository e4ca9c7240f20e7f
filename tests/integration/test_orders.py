"""Orders: creating (scratch, template, copy), editing drafts, idempotency, the automatic
path to approved, amending, cancelling, closing, deliveries and progress."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.engine.steps import StepContext, drain
from order_flow.errors import (
    ConflictError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from order_flow.services.checks import reserve_and_invoice
from order_flow.store.catalog import Reservation
from order_flow.store.invoices import Invoice
from order_flow.store.models import Instance
from order_flow.store.orders import Order, OrderLine
from tests.integration.helpers import add_user
from tests.integration.order_helpers import (
    count,
    customer,
    order_body,
    people,
    product,
    reload,
    state,
    stock,
    submit,
    triggers,
)


def today(app: App) -> date:
    return app.engine.clock().astimezone(ZoneInfo(app.settings.timezone)).date()


def approved_order(app: App, qty: str = "10", on_hand: str = "100") -> tuple[Order, int]:
    """An order from a template, approved by the automatic path; (order, product id)."""
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice, price="10", on_hand=on_hand, tax_code="1090101010000000000")
    template = app.orders.create_template(
        c.id, "每周补货", [{"product_id": p.id, "qty": qty}], who.alice
    )
    order = app.orders.from_template(template.id, who.alice)
    assert submit(app, order, who.alice) == "approved"
    return reload(app, order), p.id


# -- creating ------------------------------------------------------------------------------


def test_an_order_gets_a_dated_number_rounded_line_amounts_and_a_draft_workflow(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice, price="3.335", tax_category="general_9")
    body = order_body(c.id, (p.id, "3"), customer_po="PO-1", priority="urgent")
    order = app.orders.create(body, who.alice)

    assert order.number == f"SO{today(app):%Y%m%d}-{order.id:06d}"
    (line,) = order.lines
    # net = round(3 x 3.335) = 10.01 (half up), tax = round(10.01 x 9 %) = 0.90
    assert (line.net, line.tax, line.gross) == (Decimal("10.01"), Decimal("0.90"), Decimal("10.91"))
    assert (line.tax_category, line.tax_rate, line.description) == (
        "general_9",
        Decimal("0.09"),
        p.name,
    )
    assert (order.total_net, order.total_tax, order.total_gross) == (
        Decimal("10.01"),
        Decimal("0.90"),
        Decimal("10.91"),
    )
    assert state(app, order) == "draft"
    assert order.version == 1
    with app.engine.session_factory() as s:
        instance = s.get_one(Instance, order.instance_id)
    assert (instance.subject_type, instance.subject_id) == ("order", str(order.id))
    assert instance.context == {"number": order.number, "customer": c.name, "hold_reason": ""}
    assert (instance.priority, instance.created_by) == (0, "alice")


def test_a_tax_inclusive_order_converts_a_tax_exclusive_list_price(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice, price="100")
    order = app.orders.create(order_body(c.id, (p.id, "2"), pricing="inclusive"), who.alice)
    (line,) = order.lines
    assert line.unit_price == Decimal("113.00000000")
    # gross = 226.00, net = round(226 / 1.13) = 200.00, tax = 26.00
    assert (line.net, line.tax, line.gross) == (
        Decimal("200.00"),
        Decimal("26.00"),
        Decimal("226.00"),
    )


def test_invalid_input_is_refused_field_by_field_and_writes_nothing(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice)
    before = (count(app, Order), count(app, OrderLine), count(app, Instance))
    body = {
        "customer_id": c.id,
        "pricing": "gross",
        "priority": "asap",
        "promised_date": (today(app) - timedelta(days=1)).isoformat(),
        "special": True,
        "lines": [
            {"product_id": p.id, "qty": "0"},
            {"product_id": p.id, "qty": 1.5},
            {"product_id": p.id, "qty": "1.123456789"},
            {"product_id": p.id, "qty": "1", "unit_price": "-1"},
            {"product_id": 999999, "qty": "1"},
            {"product_id": p.id, "qty": "99999999999"},
        ],
    }
    with pytest.raises(ValidationError) as caught:
        app.orders.create(body, who.alice)
    assert set(caught.value.errors) == {
        "pricing",
        "priority",
        "promised_date",
        "signoff_groups",
        "lines[0].qty",
        "lines[1].qty",
        "lines[2].qty",
        "lines[3].unit_price",
        "lines[4].product_id",
        "lines[5].qty",
    }
    assert (count(app, Order), count(app, OrderLine), count(app, Instance)) == before


def test_an_unknown_customer_an_inactive_product_and_no_lines_are_refused(app: App) -> None:
    who = people(app)
    p = product(app, who.alice, active=False)
    with pytest.raises(ValidationError) as caught:
        app.orders.create(order_body(424242, (p.id, "1")), who.alice)
    assert set(caught.value.errors) == {"customer_id", "lines[0].product_id"}
    with pytest.raises(ValidationError) as caught:
        app.orders.create({"customer_id": 1, "lines": []}, who.alice)
    assert "lines" in caught.value.errors
    assert count(app, Order) == 0


def test_the_same_idempotency_key_and_body_returns_the_same_order(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice)
    body = order_body(c.id, (p.id, "1"))
    first = app.orders.create(body, who.alice, idempotency_key="k-1")
    again = app.orders.create(dict(body), who.alice, idempotency_key="k-1")
    assert again.id == first.id
    stored = app.orders.get(first.id)
    assert (stored.version, stored.number, stored.instance_id) == (
        1,
        first.number,
        first.instance_id,
    )
    assert count(app, Order) == 1


def test_an_idempotency_key_reused_with_a_different_body_is_a_conflict(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice)
    app.orders.create(order_body(c.id, (p.id, "1")), who.alice, idempotency_key="k-2")
    with pytest.raises(ConflictError, match="Idempotency-Key reused with a different body"):
        app.orders.create(order_body(c.id, (p.id, "2")), who.alice, idempotency_key="k-2")
    assert count(app, Order) == 1


def test_a_draft_is_edited_under_its_version_and_frozen_once_submitted(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p, q = product(app, who.alice), product(app, who.alice, price="5")
    order = app.orders.create(order_body(c.id, (p.id, "1")), who.alice)
    edited = app.orders.update_draft(
        order.id, {"lines": [{"product_id": q.id, "qty": "4"}], "notes": "改"}, who.alice, 1
    )
    assert [(ln.line_no, ln.product_id, ln.qty) for ln in edited.lines] == [(1, q.id, Decimal("4"))]
    assert (edited.total_net, edited.notes, edited.version) == (Decimal("20.00"), "改", 2)
    with pytest.raises(ConflictError):
        app.orders.update_draft(order.id, {"notes": "stale"}, who.alice, 1)
    app.orders.submit(order.id, who.alice)
    with pytest.raises(TransitionNotAllowedError, match="frozen; amend instead"):
        app.orders.update_draft(order.id, {"notes": "late"}, who.alice, reload(app, order).version)


def test_a_copy_is_a_new_draft_at_todays_prices_without_the_po(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice, price="10")
    source = app.orders.create(order_body(c.id, (p.id, "3"), customer_po="PO-9"), who.alice)
    app.catalog.update_product(p.id, {"price": "12"}, who.alice)
    copy = app.orders.copy(source.id, who.alice)
    assert (copy.copied_from_id, copy.customer_po, copy.lines[0].unit_price) == (
        source.id,
        None,
        Decimal("12"),
    )
    assert copy.number != source.number and state(app, copy) == "draft"


def test_an_unknown_order_is_not_found(app: App) -> None:
    with pytest.raises(NotFoundError):
        app.orders.get(404)


# -- the automatic path ------------------------------------------------------------------------


def test_an_order_from_a_template_below_the_review_amount_is_approved_and_reserved(
    app: App,
) -> None:
    order, product_id = approved_order(app, qty="10", on_hand="100")
    assert order.template_id is not None and order.approved_at is not None
    assert triggers(app, order) == ["start", "submit", "checks_passed"]
    assert order.lines[0].qty_reserved == Decimal("10")
    assert stock(app, product_id) == (Decimal("100"), Decimal("10"))
    with app.engine.session_factory() as s:
        invoices = s.scalars(select(Invoice).where(Invoice.order_id == order.id)).all()
    assert [(i.kind, i.number, i.total_gross) for i in invoices] == [
        ("blue", None, order.total_gross)
    ]


def test_the_reservation_step_run_twice_reserves_once(app: App) -> None:
    order, product_id = approved_order(app, qty="10")
    assert order.instance_id is not None
    with app.engine.uow() as uow:
        row = app.engine.load(uow.session, order.instance_id)
        reserve_and_invoice(StepContext(app, uow, 0, "order.reserve_and_invoice", row, 2))
        uow.commit()
    assert stock(app, product_id)[1] == Decimal("10")


# -- amend, cancel, close ------------------------------------------------------------------------


def test_amend_makes_revision_2_linked_to_1_and_releases_its_stock(app: App) -> None:
    order, product_id = approved_order(app, qty="10")
    dave = add_user(app, "dave")
    revision = app.orders.amend(order.id, dave, "客户改数量")
    assert state(app, order) == "amended"
    assert (revision.previous_id, revision.revision, revision.number) == (
        order.id,
        2,
        f"{order.number}-R2",
    )
    assert state(app, revision) == "draft"
    assert [(ln.product_id, ln.qty) for ln in revision.lines] == [(product_id, Decimal("10"))]
    assert stock(app, product_id)[1] == Decimal("0")
    assert submit(app, revision, dave) == "approved"  # the revision keeps its template
    third = app.orders.amend(revision.id, dave, "再改")
    assert (third.number, third.previous_id) == (f"{order.number}-R3", revision.id)


def test_amend_and_cancel_are_refused_once_an_invoice_was_issued(app: App) -> None:
    order, product_id = approved_order(app)
    with app.engine.uow() as uow:  # the invoicing step numbers it
        uow.session.execute(update(Invoice).where(Invoice.order_id == order.id).values(number=1))
        uow.commit()
    dave = add_user(app, "dave")
    with pytest.raises(TransitionNotAllowedError, match="no_invoice_issued"):
        app.orders.amend(order.id, dave, "太晚了")
    with pytest.raises(TransitionNotAllowedError, match="no_invoice_issued"):
        app.orders.cancel(order.id, dave, "太晚了")
    assert state(app, order) == "approved"
    assert count(app, Order) == 1
    assert stock(app, product_id)[1] == Decimal("10")


def test_cancel_releases_the_reservations(app: App) -> None:
    order, product_id = approved_order(app, qty="7")
    app.orders.cancel(order.id, _clerk(app), "客户取消")
    assert state(app, order) == "cancelled"
    assert stock(app, product_id) == (Decimal("100"), Decimal("0"))
    assert reload(app, order).lines[0].qty_reserved == Decimal("0")
    with app.engine.session_factory() as s:
        statuses = s.scalars(select(Reservation.status)).all()
    assert statuses == ["released"]


def test_close_short_closes_and_releases_the_rest(app: App) -> None:
    order, product_id = approved_order(app, qty="10")
    clerk = _clerk(app)
    app.orders.record_delivery(order.id, {order.lines[0].id: Decimal("4")}, clerk)
    app.orders.close(order.id, clerk, "余量不要了")
    assert state(app, order) == "closed"
    assert stock(app, product_id) == (Decimal("96"), Decimal("0"))


def _clerk(app: App) -> Actor:
    return add_user(app, "dave")


# -- deliveries and progress ------------------------------------------------------------------


def test_deliveries_consume_stock_and_progress_is_computed_from_the_lines(app: App) -> None:
    order, product_id = approved_order(app, qty="10")
    clerk = _clerk(app)
    line_id = order.lines[0].id
    after = app.orders.record_delivery(order.id, {line_id: "4"}, clerk)
    progress = app.orders.progress(after)
    assert (progress.delivered_pct, progress.billed_pct) == (Decimal("40.00"), Decimal("100.00"))
    assert stock(app, product_id) == (Decimal("96"), Decimal("6"))
    assert state(app, order) == "approved"
    done = app.orders.record_delivery(order.id, {line_id: Decimal("6")}, clerk)
    assert app.orders.progress(done).delivered_pct == Decimal("100.00")
    assert state(app, order) == "approved"  # its invoice is a draft: billed means issued
    drain(app)  # issue it
    assert state(app, order) == "completed"
    assert triggers(app, order)[-1] == "fulfilled"


def test_a_delivery_beyond_the_reserved_quantity_is_refused(app: App) -> None:
    order, product_id = approved_order(app, qty="10")
    with pytest.raises(ValidationError) as caught:
        app.orders.record_delivery(order.id, {order.lines[0].id: "11"}, _clerk(app))
    assert list(caught.value.errors) == [f"quantities[{order.lines[0].id}]"]
    assert stock(app, product_id) == (Decimal("100"), Decimal("10"))


# -- listing -------------------------------------------------------------------------------


def test_the_list_filters_by_state_customer_and_text(app: App) -> None:
    who = people(app)
    c1, c2 = customer(app, who.alice, name="福州甲方有限公司"), customer(app, who.alice)
    p = product(app, who.alice)
    a = app.orders.create(order_body(c1.id, (p.id, "1"), customer_po="PO-A"), who.alice)
    b = app.orders.create(order_body(c2.id, (p.id, "1")), who.alice)
    app.orders.submit(b.id, who.alice)
    rows, total = app.orders.list(state="draft")
    assert total == 1 and [r.order.id for r in rows] == [a.id]
    rows, total = app.orders.list(q="甲方")
    assert [r.order.id for r in rows] == [a.id]
    rows, total = app.orders.list(customer_id=c2.id)
    assert [(r.order.id, r.state) for r in rows] == [(b.id, "submitted")]
    rows, total = app.orders.list(limit=1)
    assert total == 2 and [r.order.id for r in rows] == [b.id]


def test_two_concurrent_requests_with_one_idempotency_key_make_one_order(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice)
    body = order_body(c.id, (p.id, "1"))
    barrier = threading.Barrier(2)

    def create() -> int:
        barrier.wait()
        return app.orders.create(body, who.alice, idempotency_key="k-race").id

    with ThreadPoolExecutor(2) as pool:
        ids = [f.result() for f in [pool.submit(create), pool.submit(create)]]
    assert ids[0] == ids[1]
    assert count(app, Order) == 1
    assert count(app, Instance) == 1
