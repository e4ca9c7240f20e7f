"""Order import in a real browser: upload, the page follows the import, the report."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from order_flow.store.catalog import Product
from order_flow.store.customers import Customer
from tests.e2e.browser.conftest import LiveServer, PageFactory, Shots
from tests.e2e.browser.support import expect, sign_in
from tests.integration.import_helpers import ZH, write_csv

ORDERS = 400  # two chunks of 200: the page shows at least one state before the end


def test_a_clerk_uploads_a_file_and_the_page_follows_the_import_to_its_report(
    live: LiveServer, new_page: PageFactory, shots: Shots, tmp_path: Path
) -> None:
    with live.app.engine.session_factory() as s:
        codes = list(s.scalars(select(Customer.code).order_by(Customer.id).limit(3)))
        skus = list(s.scalars(select(Product.sku).where(Product.active).order_by(Product.id)))
    rows: list[tuple[str, ...]] = [
        (codes[i % len(codes)], f"BROWSER-{i}", skus[i % len(skus)], "1", "", "", "", "")
        for i in range(ORDERS)
    ]
    rows.append((codes[0], "BROWSER-BAD", "NO-SUCH-SKU", "1", "", "", "", ""))
    path = write_csv(tmp_path / "高峰订单.csv", ZH, rows)

    page = new_page()
    sign_in(page, "clerk3")
    page.locator(".mainnav").get_by_role("link", name="导入订单").click()
    page.wait_for_url("**/orders/import")
    page.set_input_files("#file", str(path))
    page.get_by_role("button", name="导入").click()

    page.wait_for_url(re.compile(r"/orders/import/\d+$"))
    # The page reloads itself every 2 s until the import is done.
    expect(page.locator("#report-title")).to_have_text("导入报告 · 高峰订单.csv", timeout=120_000)
    expect(page.locator(".rows-total")).to_have_text(str(ORDERS + 1))
    expect(page.locator(".rows-rejected")).to_have_text("1")
    expect(page.locator("table.rejects tbody tr")).to_have_count(1)
    expect(page.locator("table.rejects tbody tr td").nth(0)).to_have_text(str(ORDERS + 2))
    expect(page.locator("table.rejects tbody tr td").nth(1)).to_have_text("商品编码")
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    expect(page.locator(".created-orders li")).to_have_count(50)  # the first 50 listed
    shots(page, "import-report")
