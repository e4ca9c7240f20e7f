"""The reports page in a real browser: charts drawn, the date range changes the figures,
and the README's screenshot (docs/screenshots/reports.png with
ORDER_FLOW_UPDATE_SCREENSHOTS=1, as the other README screenshots)."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from zoneinfo import ZoneInfo

from order_flow.services.reports import Filters, ReportService
from tests.conftest import ROOT
from tests.e2e.browser.conftest import LiveServer, PageFactory, Shots
from tests.e2e.browser.support import expect, sign_in

DOCS = ROOT / "docs" / "screenshots"
UPDATE = os.environ.get("ORDER_FLOW_UPDATE_SCREENSHOTS") == "1"


def test_a_clerk_opens_the_sales_reports_and_the_date_range_changes_the_figures(
    live: LiveServer, new_page: PageFactory, shots: Shots
) -> None:
    app = live.app
    today = app.engine.clock().astimezone(ZoneInfo(app.settings.timezone)).date()
    expected = ReportService(app).run("sales-by-day", Filters(today, today))
    assert expected.totals is not None and expected.totals[1] > 0, "the demo has sales today"
    orders_today = str(expected.totals[1])

    page = new_page()
    sign_in(page, "clerk1")
    page.goto("/reports/sales")
    expect(page.locator("h1")).to_have_text("销售")
    day = page.locator("#report-sales-by-day")
    expect(day.locator("svg.chart")).to_be_visible()
    expect(day.locator("tfoot td").nth(1)).to_have_text(orders_today)

    # A range before the demo existed: no sales, the chart says so.
    page.fill("#f-from", (today - timedelta(days=400)).isoformat())
    page.fill("#f-to", (today - timedelta(days=300)).isoformat())
    page.click("#report-filters button[type=submit]")
    expect(day.locator("p.empty")).to_have_text("所选条件下没有数据")
    expect(day.locator("table")).to_have_count(0)
    expect(day.locator("svg.chart title")).to_have_text("按日销售")
    assert "from=" in page.url

    page.fill("#f-from", (today - timedelta(days=6)).isoformat())
    page.fill("#f-to", today.isoformat())
    page.click("#report-filters button[type=submit]")
    expect(day.locator("tfoot td").nth(1)).to_have_text(orders_today)
    expect(day.locator("svg.chart circle").first).to_be_visible()
    expect(page.locator("#report-sales-by-customer svg.chart rect").first).to_be_visible()
    shot = shots(page, "reports", full_page=False)
    if UPDATE:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS / "reports.png")
