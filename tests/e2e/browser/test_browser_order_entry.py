"""Order entry in a real browser: a field error shows inline, is fixed, then submitted."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import func, select

from order_flow.store.orders import Order
from tests.e2e.browser.conftest import LiveServer, PageFactory, Shots
from tests.e2e.browser.support import choose, expect, order_by_number, sign_in


def _order_count(live: LiveServer) -> int:
    with live.app.engine.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(Order)) or 0)


def test_a_clerk_enters_an_order_fixes_the_inline_error_and_submits_it(
    live: LiveServer, new_page: PageFactory, shots: Shots
) -> None:
    before = _order_count(live)
    page = new_page()
    sign_in(page, "clerk3")
    page.locator(".mainnav").get_by_role("link", name="新建订单").click()
    page.wait_for_url("**/orders/new")
    expect(page.locator("h1")).to_have_text("新建订单")

    choose(page, "#customer_id", "福州华闽贸易有限公司")
    page.fill("#customer_po", "HM-BROWSER-1")
    choose(page, "select[name=line-0-product_id]", "不锈钢螺栓")
    page.fill("input[name=line-0-qty]", "0")
    choose(page, "select[name=line-1-product_id]", "深沟球轴承")
    page.fill("input[name=line-1-qty]", "4")
    page.get_by_role("button", name="保存草稿").click()

    expect(page.locator(".form-error[role=alert]")).to_have_text("请修正标出的字段。")
    expect(page.locator("#err-line-0-qty")).to_have_text("必须大于 0")
    expect(page.locator("input[name=line-0-qty]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-line-1-qty")).to_have_count(0)
    # What the clerk typed is still there, and nothing was written.
    expect(page.locator("#customer_po")).to_have_value("HM-BROWSER-1")
    expect(page.locator("input[name=line-1-qty]")).to_have_value("4")
    assert _order_count(live) == before
    shots(page, "inline-error")

    page.fill("input[name=line-0-qty]", "120")
    page.get_by_role("button", name="保存草稿").click()
    page.wait_for_url(re.compile(r"/orders/\d+/edit$"))
    flash = page.locator(".flash-success")
    expect(flash).to_contain_text("已保存")
    number = re.search(r"SO\d{8}-\d{6}", flash.inner_text())
    assert number is not None
    order, state = order_by_number(live.app, number.group(0))
    assert state == "draft" and order.customer_po == "HM-BROWSER-1"
    assert [(ln.line_no, ln.qty) for ln in order.lines] == [(1, Decimal("120")), (2, Decimal("4"))]
    assert _order_count(live) == before + 1
    shots(page, "draft-saved")

    page.get_by_role("button", name="保存并提交").click()
    page.wait_for_url(f"**/orders/{order.id}")
    expect(page.locator(".flash-success")).to_have_text("订单已提交。")
    expect(page.locator("#order .badge.state")).to_have_text("已提交")
    assert order_by_number(live.app, order.number)[1] == "submitted"

    live.run_steps()  # the checks: entered from scratch, so it waits for double review
    assert order_by_number(live.app, order.number)[1] == "review"
    page.reload()
    expect(page.locator("#order .badge.state")).to_have_text("复核")
    expect(page.get_by_role("link", name=re.compile("打开任务|Open task"))).to_have_count(1)
    shots(page, "submitted-in-review")
