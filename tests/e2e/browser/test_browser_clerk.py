"""A clerk's day in a real browser (zh-CN): claim next, re-check a held order, the second
approval of a double review, and the inbox keyboard shortcuts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.e2e.browser.conftest import LiveServer, PageFactory, Shots
from tests.e2e.browser.support import (
    audit_of,
    expect,
    open_task_of,
    order_by_number,
    orders_in,
    sign_in,
    task,
    user_id,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _flash(page: Page) -> str:
    return " ".join(page.locator(".flash").all_inner_texts())


def test_a_clerk_claims_the_next_task_rechecks_a_held_order_and_sees_it_approved(
    live: LiveServer, new_page: PageFactory, shots: Shots
) -> None:
    app = live.app
    # The demo's most urgent held order: urgent, held for CREDIT before the limit was raised.
    held = orders_in(app, "on_hold", priority="urgent", hold_reason="CREDIT")
    assert len(held) == 1
    order = held[0]
    expected_task = open_task_of(app, order)

    page = new_page()
    sign_in(page, "clerk1")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#claim-next")).to_have_text("领取下一个")
    expect(page.locator(".mainnav")).to_contain_text("待办")
    expect(page.locator("[data-queue=group]")).to_contain_text("本组待领取")
    shots(page, "inbox")

    page.click("#claim-next")
    page.wait_for_url(f"**/tasks/{expected_task.id}")
    assert f"您已领取任务 {expected_task.id}" in _flash(page)
    assert task(app, expected_task.id).assignee_id == user_id(app, "clerk1")
    expect(page.locator("h1")).to_contain_text(order.number)
    expect(page.locator("#order .badge.state")).to_have_text("异常")
    expect(page.locator("button.outcome-recheck")).to_have_text("重新检查")
    shots(page, "task-claimed")

    comment = "客户已追加授信额度, 请重新检查"
    page.fill("#comment", comment)
    page.click("button.outcome-recheck")
    page.wait_for_url(re.compile(rf"/inbox/\?done={expected_task.id}"))
    expect(page.locator(".offer")).to_contain_text(f"任务 {expected_task.id} 已完成")
    assert task(app, expected_task.id).status == "completed"
    assert order_by_number(app, order.number)[1] == "submitted"
    shots(page, "inbox-offers-next")

    live.run_steps()  # the worker re-runs the checks: the credit limit is fine now
    assert order_by_number(app, order.number)[1] == "approved"
    page.goto(f"/orders/{order.id}")
    expect(page.locator("#order .badge.state")).to_have_text("已审核")
    expect(page.locator("#timeline")).to_contain_text(comment)
    expect(page.locator("#timeline")).to_contain_text("recheck")
    shots(page, "order-approved")
    completes = audit_of(app, order.instance_id or 0, "complete")
    assert [(e.actor, e.reason) for e in completes][-1] == ("clerk1", comment)


def test_a_second_clerk_gives_the_second_approval_of_a_double_review(
    live: LiveServer, new_page: PageFactory, shots: Shots
) -> None:
    app = live.app
    # The demo's half-approved review: entered by clerk3, first approval by clerk1.
    (order,) = orders_in(app, "review", priority="urgent")
    review_task = open_task_of(app, order)
    assert [e.actor for e in audit_of(app, order.instance_id or 0, "complete")] == ["clerk1"]

    page = new_page()
    sign_in(page, "clerk2")
    page.goto("/inbox/?queue=group")
    row = page.locator("tr.task-row", has_text=order.number)
    expect(row).to_have_count(1)
    row.get_by_role("link", name=order.number).click()
    page.wait_for_url(f"**/tasks/{review_task.id}")
    expect(page.locator("#order .badge.state")).to_have_text("复核")
    page.locator(".task-actions button[data-key=c]").click()  # 领取
    page.wait_for_url(f"**/tasks/{review_task.id}")
    assert task(app, review_task.id).assignee_id == user_id(app, "clerk2")
    shots(page, "review-claimed")

    page.fill("#comment", "数量与价格已复核")
    page.click("button.outcome-approve")
    page.wait_for_url(re.compile(rf"/inbox/\?done={review_task.id}"))
    expect(page.locator(".offer")).to_contain_text(f"任务 {review_task.id} 已完成")

    assert order_by_number(app, order.number)[1] == "approved"
    assert open_task_of(app, order) is None
    approvers = [e.actor for e in audit_of(app, order.instance_id or 0, "complete")]
    assert approvers == ["clerk1", "clerk2"]
    live.run_steps()
    page.goto(f"/orders/{order.id}")
    expect(page.locator("#order .badge.state")).to_have_text("已审核")
    shots(page, "order-approved")


def test_the_inbox_keyboard_shortcuts_move_claim_open_and_show_help(
    live: LiveServer, new_page: PageFactory, shots: Shots
) -> None:
    app = live.app
    page = new_page()
    sign_in(page, "clerk1")
    page.goto("/inbox/?queue=group")
    rows = page.locator("tr.task-row")
    assert rows.count() >= 3
    selected = page.locator("tr.task-row.selected")

    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    expect(selected).to_have_count(1)
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bselected\b"))
    expect(selected).to_have_count(1)

    help_box = page.locator("#help")
    expect(help_box).to_be_hidden()
    page.keyboard.press("?")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("快捷键")
    shots(page, "help", full_page=False)
    page.keyboard.press("?")
    expect(help_box).to_be_hidden()

    page.keyboard.press("j")  # the second row
    href = rows.nth(1).get_attribute("data-href") or ""
    task_id = int(href.rstrip("/").rsplit("/", 1)[-1])
    assert task(app, task_id).assignee_id is None
    page.keyboard.press("c")
    page.wait_for_url(f"**/tasks/{task_id}")
    assert task(app, task_id).assignee_id == user_id(app, "clerk1")
    shots(page, "claimed-by-c")

    page.goto("/inbox/?queue=mine")
    mine = page.locator("tr.task-row")
    expect(mine).to_have_count(1)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tasks/{task_id}")
