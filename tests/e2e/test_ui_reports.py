"""The reports pages over HTTP: access, SVG charts, filters that change the figures, CSV."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask

from order_flow.bootstrap import App
from tests.e2e.ui_support import signed_in, user, web
from tests.integration.test_reports_data import INJECTION, NOW, World, build_world


@pytest.fixture
def site(app: App) -> tuple[Flask, World]:
    app.engine.clock = lambda: NOW
    world = build_world(app)
    user(app, "ann")
    user(app, "boss", role="supervisor")
    return web(app), world


def test_sales_page_draws_charts_and_the_filters_change_the_figures(
    site: tuple[Flask, World],
) -> None:
    flask, world = site
    ann = signed_in(flask, "ann")
    page = ann.page("/reports/sales?from=2026-03-01&to=2026-04-30")
    assert page.count("<svg") >= 10  # one chart per sales report
    assert "614.50" in page and "388.50" in page  # totals of sales by day, March
    narrowed = ann.page(
        f"/reports/sales?from=2026-03-01&to=2026-04-30&customer={world.customers['C1']}"
    )
    assert "332.00" in narrowed and "614.50" not in narrowed
    march = ann.page("/reports/sales/sales-by-day?from=2026-03-03&to=2026-03-31")
    assert "2026-03-03" in march and "2026-03-02" not in march
    assert "<svg" in march and "<polyline" in march
    bad = ann.client.get("/reports/sales?from=2026-13-01")
    assert bad.status_code == 422
    assert 'id="err-from"' in bad.get_data(as_text=True)
    zh = ann.page("/reports/sales?lang=zh_CN&from=2026-03-01&to=2026-03-31")
    assert "按日销售" in zh and "合计" in zh


def test_csv_export_neutralises_formulas_and_operations_are_for_supervisors(
    site: tuple[Flask, World],
) -> None:
    flask, _world = site
    ann = signed_in(flask, "ann")
    response = ann.client.get("/reports/sales/sales-by-customer?format=csv&lang=en")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    cells = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert ["C002", "'" + INJECTION, "1", "50.00", "6.50", "56.50"] in cells
    assert ann.client.get("/reports/operations").status_code == 403
    assert "/reports/operations" not in ann.page("/reports/")
    boss = signed_in(flask, "boss")
    ops = boss.page("/reports/operations?lang=en")
    assert "Throughput by step" in ops and "<svg" in ops
    assert "33.3%" in ops  # SLA breach rate
    assert boss.client.get("/reports/nope").status_code == 404
    assert flask.test_client().get("/reports/sales").status_code == 302  # sign in first
