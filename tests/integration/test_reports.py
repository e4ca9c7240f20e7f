"""Sales and invoice reports on the hand-built data set (test_reports_data), both DBs."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest

from order_flow.bootstrap import App
from order_flow.errors import ValidationError
from order_flow.services.reports import REPORTS, Filters, ReportService, to_csv, to_json
from tests.integration.test_reports_data import INJECTION, NOW, World, build_world

D = Decimal
MARCH_APRIL = (date(2026, 3, 1), date(2026, 4, 30))


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def run(app: App, name: str, **kw: object) -> object:
    return ReportService(app).run(name, Filters(now=NOW, **kw))  # type: ignore[arg-type]


def rows(app: App, name: str, **kw: object) -> list[tuple[object, ...]]:
    return run(app, name, **kw).rows  # type: ignore[attr-defined]


def sales_by_day_counts_confirmed_orders_on_their_local_day(app: App, world: World) -> None:
    result = ReportService(app).run("sales-by-day", Filters(*MARCH_APRIL, now=NOW))
    # O2 was entered 2026-03-02 20:00 UTC: 03-03 in Shanghai. O4 (cancelled) and O6
    # (on hold) are no sales.
    assert result.rows == [
        ("2026-03-02", 1, D("200.00"), D("19.00"), D("219.00")),
        ("2026-03-03", 1, D("100.00"), D("13.00"), D("113.00")),
        ("2026-03-10", 1, D("50.00"), D("6.50"), D("56.50")),
        ("2026-04-06", 1, D("200.00"), D("26.00"), D("226.00")),
    ]
    assert result.totals == ("Total", 4, D("550.00"), D("64.50"), D("614.50"))


def sales_by_week_start_on_monday_and_by_month_on_the_first(app: App, world: World) -> None:
    weeks = rows(app, "sales-by-week", date_from=MARCH_APRIL[0], date_to=MARCH_APRIL[1])
    assert [(r[0], r[1], r[4]) for r in weeks] == [
        ("2026-03-02", 2, D("332.00")),
        ("2026-03-09", 1, D("56.50")),
        ("2026-04-06", 1, D("226.00")),
    ]
    months = rows(app, "sales-by-month")
    assert months == [
        ("2025-10-01", 1, D("44.25"), D("5.75"), D("50.00")),
        ("2026-03-01", 3, D("350.00"), D("38.50"), D("388.50")),
        ("2026-04-01", 1, D("200.00"), D("26.00"), D("226.00")),
    ]


def the_filters_change_the_sales_figures(app: App, world: World) -> None:
    by_customer = rows(app, "sales-by-day", customer_id=world.customers["C1"])
    assert [(r[0], r[4]) for r in by_customer] == [
        ("2026-03-02", D("219.00")),
        ("2026-03-03", D("113.00")),
    ]
    # With a product, only that product's lines count.
    by_product = rows(app, "sales-by-day", product_id=world.products["P1"])
    assert [(r[0], r[1], r[4]) for r in by_product] == [
        ("2025-10-30", 1, D("50.00")),
        ("2026-03-02", 1, D("113.00")),
        ("2026-03-10", 1, D("56.50")),
    ]
    # The range is in local days: 03-03 starts at 2026-03-02 16:00 UTC.
    ranged = rows(app, "sales-by-day", date_from=date(2026, 3, 3), date_to=date(2026, 3, 31))
    assert [r[0] for r in ranged] == ["2026-03-03", "2026-03-10"]


def sales_by_customer_product_and_salesperson(app: App, world: World) -> None:
    f = {"date_from": MARCH_APRIL[0], "date_to": MARCH_APRIL[1]}
    customers = run(app, "sales-by-customer", **f)
    assert [(r[0], r[2], r[5]) for r in customers.rows] == [  # type: ignore[attr-defined]
        ("C001", 2, D("332.00")),
        ("C003", 1, D("226.00")),
        ("C002", 1, D("56.50")),
    ]
    products = run(app, "sales-by-product", **f)
    assert products.row("P-2") == {  # type: ignore[attr-defined]
        "sku": "P-2", "product": "Gadget", "orders": 2, "net": D("300.00"),
        "tax": D("39.00"), "gross": D("339.00"), "qty": D("12"),
    }  # fmt: skip
    assert [r[0] for r in products.rows] == ["P-2", "P-1", "P-3"]  # type: ignore[attr-defined]
    assert products.row("P-1")["qty"] == D("15")  # type: ignore[attr-defined]
    people = rows(app, "sales-by-salesperson", **f)
    assert [(r[0], r[1], r[4]) for r in people] == [
        ("ann", 2, D("275.50")),
        ("cat", 1, D("226.00")),
        ("ben", 1, D("113.00")),
    ]


def top_lists_average_order_value_and_tax_by_rate(app: App, world: World) -> None:
    top = rows(app, "top-customers")
    assert [r[0] for r in top] == ["C001", "C003", "C002"]
    assert rows(app, "top-products")[0][0] == "P-2"
    aov = run(app, "average-order-value", date_from=MARCH_APRIL[0], date_to=MARCH_APRIL[1])
    assert aov.rows == [  # type: ignore[attr-defined]
        ("2026-03-01", 3, D("388.50"), D("129.50")),
        ("2026-04-01", 1, D("226.00"), D("226.00")),
    ]
    assert aov.totals == ("Total", 4, D("614.50"), D("153.63"))  # type: ignore[attr-defined]
    tax = run(app, "tax-by-rate", date_from=MARCH_APRIL[0], date_to=MARCH_APRIL[1])
    assert tax.rows == [  # type: ignore[attr-defined]
        ("13%", 4, D("450.00"), D("58.50"), D("508.50")),
        ("6%", 1, D("100.00"), D("6.00"), D("106.00")),
    ]
    assert tax.totals == ("Total", 5, D("550.00"), D("64.50"), D("614.50"))  # type: ignore[attr-defined]


def invoice_buckets_count_and_sum_blue_invoices(app: App, world: World) -> None:
    assert rows(app, "invoice-buckets") == [
        ("Pending", 1, D("126.00")),
        ("Issued", 4, D("438.50")),
        ("Problem", 3, D("263.00")),
    ]
    assert rows(app, "invoice-buckets", customer_id=world.customers["C1"]) == [
        ("Pending", 0, D("0.00")),
        ("Issued", 2, D("332.00")),
        ("Problem", 1, D("113.00")),
    ]


def receivables_ageing_nets_payments_and_red_letters(app: App, world: World) -> None:
    result = run(app, "receivables-ageing", date_to=date(2026, 4, 30))
    assert result.rows == [  # type: ignore[attr-defined]
        ("Current", 0, D("0.00")),
        ("1-30 days", 1, D("119.00")),  # I1: 219 - 100 paid, 26 days late
        ("31-60 days", 1, D("100.00")),  # I2: 113 - 13 red, 51 days late
        ("61-90 days", 0, D("0.00")),
        ("Over 90 days", 1, D("40.00")),  # I7: 50 - 10 red
    ]
    assert result.totals == ("Total", 3, D("259.00"))  # type: ignore[attr-defined]
    # As of 03-15 the payment of 03-20 has not come in and I1 is not due yet.
    early = rows(app, "receivables-ageing", date_to=date(2026, 3, 15))
    assert early[0] == ("Current", 1, D("219.00"))
    assert early[1] == ("1-30 days", 1, D("100.00"))


def overdue_by_customer_and_red_letters_by_reason(app: App, world: World) -> None:
    overdue = run(app, "overdue-by-customer", date_to=date(2026, 4, 30))
    assert overdue.rows == [  # type: ignore[attr-defined]
        ("C001", "Alpha 甲公司", 2, D("219.00"), 51),
        ("C003", "Gamma", 1, D("40.00"), 150),
    ]
    red = run(app, "red-by-reason")
    assert red.row("销售折让") == {  # type: ignore[attr-defined]
        "reason": "销售折让", "count": 1, "net": D("-11.50"), "gross": D("-13.00"),
    }  # fmt: skip
    assert red.row("销货退回")["gross"] == D("-10.00")  # type: ignore[attr-defined]
    assert red.totals == ("Total", 2, D("-20.35"), D("-23.00"))  # type: ignore[attr-defined]
    in_march = rows(app, "red-by-reason", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    assert [r[0] for r in in_march] == ["销售折让"]


def csv_export_neutralises_formula_cells_and_keeps_numbers(app: App, world: World) -> None:
    result = ReportService(app).run("sales-by-customer", Filters(now=NOW))
    text = to_csv(result)
    cells = list(csv.reader(io.StringIO(text)))
    assert cells[0] == ["Customer code", "Customer", "Orders", "Net", "Tax", "Gross"]
    assert ["C002", "'" + INJECTION, "1", "50.00", "6.50", "56.50"] in cells
    assert cells[-1][0] == "Total"
    red = list(csv.reader(io.StringIO(to_csv(ReportService(app).run("red-by-reason", Filters())))))
    assert any(row[3] == "-13.00" for row in red[1:])  # a negative amount stays a number


def json_output_keeps_decimals_as_strings(app: App, world: World) -> None:
    doc = json.loads(to_json(ReportService(app).run("tax-by-rate", Filters(now=NOW))))
    assert doc["rows"][0] == {
        "rate": "13%", "lines": 5, "net": "494.25", "tax": "64.25", "gross": "558.50",
    }  # fmt: skip


def test_bad_filters_are_field_errors_and_every_report_runs_on_an_empty_database(
    app: App,
) -> None:
    service = ReportService(app)
    with pytest.raises(ValidationError) as bad:
        service.filters(date(2026, 5, 1), date(2026, 4, 1))
    assert "date_from" in bad.value.errors
    with pytest.raises(ValidationError) as unknown:
        service.run("no-such-report", Filters())
    assert "name" in unknown.value.errors
    for name in REPORTS:
        result = service.run(name, service.filters(date(2026, 1, 1), date(2026, 12, 31)))
        assert result.name == name
        assert all(len(r) == len(result.columns) for r in result.rows)


def test_sales_by_period_on_local_days_and_the_filters_that_change_them(
    app: App, world: World
) -> None:
    sales_by_day_counts_confirmed_orders_on_their_local_day(app, world)
    sales_by_week_start_on_monday_and_by_month_on_the_first(app, world)
    the_filters_change_the_sales_figures(app, world)


def test_sales_by_customer_product_salesperson_top_lists_average_and_tax(
    app: App, world: World
) -> None:
    sales_by_customer_product_and_salesperson(app, world)
    top_lists_average_order_value_and_tax_by_rate(app, world)


def test_invoice_buckets_ageing_overdue_and_red_letters(app: App, world: World) -> None:
    invoice_buckets_count_and_sum_blue_invoices(app, world)
    receivables_ageing_nets_payments_and_red_letters(app, world)
    overdue_by_customer_and_red_letters_by_reason(app, world)


def test_csv_neutralises_formulas_and_json_keeps_decimals_as_strings(
    app: App, world: World
) -> None:
    csv_export_neutralises_formula_cells_and_keeps_numbers(app, world)
    json_output_keeps_decimals_as_strings(app, world)
