"""Operations and stock reports on the hand-built data set (test_reports_data), both DBs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from order_flow.bootstrap import App
from order_flow.services.reports import Filters, ReportResult, ReportService
from tests.integration.test_reports_data import NOW, World, build_world

D = Decimal


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def run(app: App, name: str, **kw: object) -> ReportResult:
    return ReportService(app).run(name, Filters(now=NOW, **kw))  # type: ignore[arg-type]


def throughput_by_step_and_by_clerk_count_audited_transitions(app: App, world: World) -> None:
    steps = run(app, "throughput-by-step")
    assert steps.rows == [
        ("order.submitted", 8, 0, 8),
        ("order.draft", 7, 7, 0),
        ("order.on_hold", 2, 2, 0),
        ("order.review", 2, 2, 0),
    ]
    assert steps.totals == ("Total", 19, 11, 8)
    april = run(app, "throughput-by-step", date_from=date(2026, 4, 1))
    assert [(r[0], r[1]) for r in april.rows] == [
        ("order.draft", 3),
        ("order.submitted", 3),
        ("order.on_hold", 1),
    ]
    clerks = run(app, "throughput-by-clerk")
    assert clerks.rows == [("ann", 6, 1, 5), ("ben", 3, 1, 2), ("cat", 2, 1, 2)]
    only_c3 = run(app, "throughput-by-clerk", customer_id=world.customers["C3"])
    assert only_c3.rows == [("ben", 2, 1, 1), ("ann", 1, 0, 1), ("cat", 1, 0, 1)]


def cycle_time_reports_median_and_p90_hours(app: App, world: World) -> None:
    result = run(app, "cycle-time")
    assert result.rows == [
        ("Submitted to approved", 5, D("6.00"), D("9.20")),  # 2, 4, 6, 8, 10 h
        ("Approved to invoiced", 4, D("59.00"), D("71.40")),  # 48, 48, 70, 72 h
        ("Submitted to invoiced", 4, D("65.00"), D("74.80")),  # 54, 58, 72, 76 h
    ]
    in_2026 = run(app, "cycle-time", date_from=date(2026, 1, 1))
    assert in_2026.rows[0] == ("Submitted to approved", 4, D("5.00"), D("7.40"))


def sla_breach_rate_and_first_pass_rate(app: App, world: World) -> None:
    sla = run(app, "sla-breach")
    assert sla.rows == [("order.on_hold", 2, 0, D("0.0")), ("order.review", 1, 1, D("100.0"))]
    assert sla.totals == ("Total", 3, 1, D("33.3"))
    first = run(app, "first-pass")
    # O2 (review) and O3 (hold) had a human task; an incident does not count.
    assert first.rows == [
        ("2025-10-01", 1, 1, D("100.0")),
        ("2026-03-01", 3, 1, D("33.3")),
        ("2026-04-01", 1, 1, D("100.0")),
    ]
    assert first.totals == ("Total", 5, 3, D("60.0"))


def hold_reasons_say_which_check_caught_the_order_and_how_it_ended(app: App, world: World) -> None:
    result = run(app, "hold-reasons")
    assert result.rows == [
        ("CREDIT", 1, D("33.3"), 0, 0, 1, 0),
        ("DATA", 1, D("33.3"), 1, 0, 0, 0),
        ("STOCK_SHORT", 1, D("33.3"), 0, 0, 0, 1),
    ]
    assert result.totals == ("Total", 3, D("100.0"), 1, 0, 1, 1)
    march = run(app, "hold-reasons", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    assert [r[0] for r in march.rows] == ["DATA"]


def backlog_by_state_and_age(app: App, world: World) -> None:
    result = run(app, "backlog")
    assert result.rows == [
        ("invoice.pending", 1, 0, 1, 0, 0),
        ("invoice.problem", 1, 1, 0, 0, 0),
        ("order.approved", 2, 0, 1, 0, 1),
        ("order.on_hold", 1, 0, 1, 0, 0),
    ]
    assert result.totals == ("Total", 5, 1, 3, 0, 1)
    c2 = run(app, "backlog", customer_id=world.customers["C2"])
    assert c2.rows == [("order.on_hold", 1, 0, 1, 0, 0)]


def short_products_and_backorder_value(app: App, world: World) -> None:
    short = run(app, "short-products")
    # O5 (approved) waits for 5 of P2, O6 (held for stock) for 8; O4 is cancelled.
    assert short.rows == [("P-2", "Gadget", 2, 2, D("13"), D("0"))]
    backorder = run(app, "backorder-value")
    assert backorder.rows == [
        ("C002", "=cmd|' /C calc'!A0", 1, 1, D("160.00")),
        ("C003", "Gamma", 1, 1, D("100.00")),  # 5 of 10 still to ship: half of 200.00
    ]
    assert backorder.totals == ("Total", None, 2, 2, D("260.00"))
    assert run(app, "backorder-value", product_id=world.products["P1"]).rows == []


def stock_turnover_divides_deliveries_by_stock_on_hand(app: App, world: World) -> None:
    march = run(app, "stock-turnover", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    assert march.rows == [
        ("P-1", "Widget", D("5"), D("100"), D("0.05"), D("620.0")),
        ("P-2", "Gadget", D("2"), D("5"), D("0.40"), D("77.5")),
    ]
    everything = run(app, "stock-turnover")
    assert everything.row("P-1")["delivered"] == D("6")
    assert everything.row("P-1")["cover_days"] is None  # no range, no pace


def test_throughput_and_cycle_time_come_from_the_audit_trail(app: App, world: World) -> None:
    throughput_by_step_and_by_clerk_count_audited_transitions(app, world)
    cycle_time_reports_median_and_p90_hours(app, world)


def test_sla_breaches_first_pass_and_hold_reasons_come_from_the_tasks(
    app: App, world: World
) -> None:
    sla_breach_rate_and_first_pass_rate(app, world)
    hold_reasons_say_which_check_caught_the_order_and_how_it_ended(app, world)


def test_backlog_short_products_backorder_and_turnover(app: App, world: World) -> None:
    backlog_by_state_and_age(app, world)
    short_products_and_backorder_value(app, world)
    stock_turnover_divides_deliveries_by_stock_on_hand(app, world)
