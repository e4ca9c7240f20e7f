"""orders.state and invoices.state always equal their instance's state (both DBs):
the engine writes the copy in the transaction of every state change (StateMirror)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select

from order_flow.bootstrap import App
from order_flow.engine.batch import NewInstance, start_many_in
from order_flow.engine.versions import deploy_files, migrate
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order
from order_flow.store.tables import audit, instances
from tests.integration.helpers import add_user
from tests.integration.order_helpers import (
    customer,
    order_body,
    people,
    product,
    reload,
    state,
    submit,
    work,
)
from tests.integration.test_versions import changed_order_file

ORDERS, INVOICES = cast(Table, Order.__table__), cast(Table, Invoice.__table__)


def copies(app: App) -> dict[str, list[tuple[Any, ...]]]:
    """(subject id, copy, instance state) of every order and invoice run by an instance."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with app.engine.session_factory() as s:
        for name, t in (("orders", ORDERS), ("invoices", INVOICES)):
            out[name] = [
                tuple(r)
                for r in s.execute(
                    select(t.c.id, t.c.state, instances.c.state)
                    .join(instances, instances.c.id == t.c.instance_id)
                    .order_by(t.c.id)
                )
            ]
    return out


def mismatches(app: App) -> list[tuple[Any, ...]]:
    found = copies(app)
    return [r for rows in found.values() for r in rows if r[1] != r[2]]


def test_the_copies_follow_start_submit_approval_amend_cancel_and_invoices(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice, price="10", on_hand="100", tax_code="1090101010000000000")
    template = app.orders.create_template(
        c.id, "补货", [{"product_id": p.id, "qty": "4"}], who.alice
    )
    first = app.orders.from_template(template.id, who.alice)
    assert copies(app)["orders"] == [(first.id, "draft", "draft")]

    assert submit(app, first, who.alice) == "approved"  # submitted, checks, approved
    assert mismatches(app) == []
    found = copies(app)
    assert found["orders"] == [(first.id, "approved", "approved")]
    assert [r[1] for r in found["invoices"]] == ["pending"]  # drafted when approved

    dave = add_user(app, "dave")
    revision = app.orders.amend(first.id, dave, "客户改数量")
    assert state(app, first) == "amended"
    assert submit(app, revision, dave) == "approved"
    app.orders.cancel(revision.id, dave, "客户取消")
    found = copies(app)
    assert [r[1] for r in found["orders"]] == ["amended", "cancelled"]
    assert mismatches(app) == []
    assert reload(app, revision).state == "cancelled"  # the ORM sees the column too


def test_a_version_migration_moves_the_copy_with_the_instance(app: App, tmp_path: Path) -> None:
    who = people(app)
    c = customer(app, who.alice)
    p = product(app, who.alice)
    order = app.orders.create({"customer_id": c.id, "lines": [{"product_id": p.id, "qty": "1"}]},
                              who.alice)  # fmt: skip
    deploy_files(app.engine, [changed_order_file(tmp_path)])
    plan = migrate(app.engine, "order", 1, 2, who.boss, {"draft": "draft_checked"})
    assert plan.applied
    assert copies(app)["orders"] == [(order.id, "draft_checked", "draft_checked")]


def test_bulk_start_writes_the_copy_of_subjects_already_written(app: App) -> None:
    who = people(app)
    c = customer(app, who.alice)
    with app.engine.uow() as uow:
        ids = [
            uow.session.execute(
                insert(ORDERS).returning(ORDERS.c.id),
                dict(number=f"BULK-{n}", customer_id=c.id, created_by="alice"),
            ).scalar_one()
            for n in (1, 2)
        ]
        started = start_many_in(
            app.engine, uow, "order", "order", [NewInstance(str(i)) for i in ids], who.alice,
            fire="submit",
        )  # fmt: skip
        uow.session.execute(
            ORDERS.update().where(ORDERS.c.id == ids[0]).values(instance_id=started[0].instance_id)
        )
        uow.commit()
    with app.engine.session_factory() as s:
        states = s.execute(select(ORDERS.c.id, ORDERS.c.state).where(ORDERS.c.id.in_(ids))).all()
    assert sorted(states) == [(ids[0], "submitted"), (ids[1], "submitted")]
    assert mismatches(app) == []


def test_a_subject_without_a_row_or_an_integer_id_is_left_alone(app: App) -> None:
    clerk = add_user(app, "alice")
    started = app.engine.start("order", "order", "bench-7", clerk)  # no such order row
    app.engine.fire(started.instance_id, "submit", clerk)
    with app.engine.session_factory() as s:
        assert s.scalar(select(instances.c.state).where(instances.c.id == started.instance_id)) == (
            "submitted"
        )
        assert s.execute(select(ORDERS.c.id).where(ORDERS.c.state.is_not(None))).all() == []


def test_the_first_submission_is_kept_on_the_order_through_a_recheck(app: App) -> None:
    who = people(app)
    broke = customer(app, who.alice, credit_limit="0")  # every order held for CREDIT
    p = product(app, who.alice, price="10")
    order = app.orders.create(order_body(broke.id, (p.id, "1")), who.alice)
    assert order.submitted_at is None  # a draft
    assert submit(app, order, who.alice) == "on_hold"
    with app.engine.session_factory() as s:
        first = s.scalar(
            select(audit.c.at).where(
                audit.c.instance_id == order.instance_id, audit.c.to_state == "submitted"
            )  # fmt: skip
        )
    assert reload(app, order).submitted_at == first
    assert order.instance_id is not None
    app.engine.fire(order.instance_id, "recheck", who.alice)  # submitted again, later
    work(app)
    assert state(app, order) == "on_hold"
    assert reload(app, order).submitted_at == first
