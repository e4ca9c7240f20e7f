"""The report pieces behind the speed work (both DBs): receivables of settled invoices
paid after the as-of day, state names shared by workflows, hold reasons kept in the
hold task's data by the engine, local periods cut in Python."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from order_flow.bootstrap import App
from order_flow.engine.core import title_fields
from order_flow.services.reports import Filters, ReportService
from order_flow.services.reports_ops import state_owners
from order_flow.services.reports_sql import period_start, periods
from order_flow.store.models import Task
from tests.integration.order_helpers import customer, order_body, people, product, submit
from tests.integration.test_reports_data import NOW, World, build_world

D = Decimal


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def test_a_settled_invoice_still_owes_what_was_paid_after_the_as_of_day(
    app: App, world: World
) -> None:
    # I3 (56.50, due 03-15) is settled by the payment of 03-14; as of 03-13 it is owed.
    result = ReportService(app).run("receivables-ageing", Filters(date_to=date(2026, 3, 13)))
    assert result.rows == [
        ("Current", 2, D("275.50")),  # I1 219.00 (due 04-04) + I3 56.50
        ("1-30 days", 1, D("100.00")),  # I2: 113.00 - 13.00 red, 3 days late
        ("31-60 days", 0, D("0.00")),
        ("61-90 days", 0, D("0.00")),
        ("Over 90 days", 1, D("40.00")),  # I7: 50.00 - 10.00 red, 102 days late
    ]
    assert result.totals == ("Total", 4, D("415.50"))
    # As of the day it was paid, it owes nothing.
    paid = ReportService(app).run("receivables-ageing", Filters(date_to=date(2026, 3, 14)))
    assert paid.rows[0] == ("Current", 1, D("219.00"))


def test_state_names_shared_by_workflows_are_known_from_the_definitions(
    app: App, world: World
) -> None:
    with app.engine.session_factory() as s:
        owners = state_owners(s)
    assert owners["review"] == {"order", "invoice"}  # counted through the join
    assert owners["draft"] == {"order"}
    assert owners["issued"] == {"invoice"}
    steps = ReportService(app).run("throughput-by-step", Filters(now=NOW))
    assert steps.row("order.review")["transitions"] == 2


def test_hold_reasons_come_from_the_task_data_not_the_title(app: App, world: World) -> None:
    with app.engine.session_factory.begin() as s:
        s.execute(update(Task).where(Task.state == "on_hold").values(title="需处理"))
    result = ReportService(app).run("hold-reasons", Filters(now=NOW))
    assert [(r[0], r[1]) for r in result.rows] == [("CREDIT", 1), ("DATA", 1), ("STOCK_SHORT", 1)]


def test_a_real_hold_keeps_its_reason_code_with_the_task(app: App) -> None:
    who = people(app)
    broke = customer(app, who.alice, credit_limit="0")  # no credit at all: CREDIT hold
    p = product(app, who.alice, price="10")
    order = app.orders.create(order_body(broke.id, (p.id, "2")), who.alice)
    assert submit(app, order, who.alice) == "on_hold"
    with app.engine.session_factory() as s:
        data = s.scalar(select(Task.data).where(Task.instance_id == order.instance_id))
    assert data == {"number": order.number, "hold_reason": "CREDIT"}
    result = ReportService(app).run("hold-reasons", Filters())
    assert result.rows == [("CREDIT", 1, D("100.0"), 0, 0, 0, 1)]


def test_title_fields_are_the_values_a_title_names() -> None:
    values = {"number": "SO-1", "hold_reason": "DATA", "customer": "甲", "n": {"a": 1}}
    assert title_fields("订单 {number} 需处理: {hold_reason}", values) == {
        "number": "SO-1",
        "hold_reason": "DATA",
    }
    assert title_fields("{n[a]} {n.x} {missing}", values) == {"n": {"a": 1}}
    assert title_fields("no fields", values) is None
    assert title_fields("broken {", values) is None


def test_periods_are_cut_on_local_midnights_across_daylight_saving() -> None:
    days = periods(date(2026, 3, 28), date(2026, 3, 30), "day", "Europe/Berlin")
    assert [(label, hi - lo) for label, lo, hi in days] == [
        ("2026-03-28", timedelta(hours=24)),
        ("2026-03-29", timedelta(hours=23)),  # clocks go forward
        ("2026-03-30", timedelta(hours=24)),
    ]
    assert days[0][1] == datetime(2026, 3, 27, 23, tzinfo=UTC)
    assert days[2][1] == datetime(2026, 3, 29, 22, tzinfo=UTC)
    weeks = periods(date(2026, 3, 4), date(2026, 3, 16), "week", "Asia/Shanghai")
    assert [w[0] for w in weeks] == ["2026-03-02", "2026-03-09", "2026-03-16"]
    assert weeks[0][1] == datetime(2026, 3, 1, 16, tzinfo=UTC)
    months = periods(date(2025, 12, 31), date(2026, 2, 1), "month", "Asia/Shanghai")
    assert [(m[0], m[2] - m[1]) for m in months] == [
        ("2025-12-01", timedelta(days=31)),
        ("2026-01-01", timedelta(days=31)),
        ("2026-02-01", timedelta(days=28)),
    ]
    assert period_start(date(2026, 3, 8), "week") == date(2026, 3, 2)  # a Sunday
    with pytest.raises(ValueError, match="grain"):
        period_start(date(2026, 3, 8), "year")


def test_an_order_counts_once_per_product_however_many_lines_it_has(app: App) -> None:
    who = people(app)
    p1, p2 = product(app, who.alice, price="10"), product(app, who.alice, price="5")
    lines = [{"product_id": p, "qty": q} for p, q in ((p1.id, "1"), (p2.id, "4"), (p1.id, "2"))]
    for _ in range(2):  # from a template: approved without double review
        c = customer(app, who.alice)
        template = app.orders.create_template(c.id, "常规", lines, who.alice)
        order = app.orders.from_template(template.id, who.alice)
        assert submit(app, order, who.alice) == "approved"
    result = ReportService(app).run("sales-by-product", Filters())
    assert [(r[0], r[2], r[6], r[3]) for r in result.rows] == [  # sku, orders, qty, net
        (p1.sku, 2, D("6"), D("60.00")),
        (p2.sku, 2, D("8"), D("40.00")),
    ]
    assert ReportService(app).run("top-products", Filters()).rows[0][2] == 2
