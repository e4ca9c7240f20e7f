"""What a clerk reads on a task page: plain numbers, the hold reason and "why is this
waiting?" in Chinese, refused outcomes explained in place; claim next skips a task the
clerk could not complete."""

from __future__ import annotations

import re

from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.store.orders import Order
from order_flow.store.tables import tasks
from tests.e2e.test_ui_i18n import visible_text
from tests.e2e.ui_support import Browser, on_hold_task, signed_in, task_of, task_row, user, web
from tests.integration.helpers import snapshot
from tests.integration.order_helpers import customer, order_body, product, submit


def _snap(app: App) -> dict[str, list[tuple[object, ...]]]:
    with app.engine.session_factory() as s:
        return snapshot(s)


def _text(b: Browser, path: str) -> str:
    return " ".join(visible_text(b.page(path)).split())


def review_task(app: App, creator: Actor) -> int:
    """An order not made from a template: submitted, it waits for double review."""
    buyer = customer(app, creator)
    goods = product(app, creator)
    order = app.orders.create(order_body(buyer.id, (goods.id, "1")), creator)
    assert submit(app, order, creator) == "review"
    return task_of(app, order)


def test_quantities_prices_and_vat_rates_read_as_written(app: App) -> None:
    app.catalog.seed_tax_rates()
    alice = user(app, "alice")
    user(app, "bob")
    buyer = customer(app, alice, credit_limit="1")
    bearing = product(app, alice, price="18")
    books = product(app, alice, price="12345.5", tax_category="exempt")
    body = order_body(buyer.id, (bearing.id, "100"), (books.id, "2.50"))
    order: Order = app.orders.create(body, alice)
    assert submit(app, order, alice) == "on_hold"
    text = _text(signed_in(web(app), "bob"), f"/tasks/{task_of(app, order)}")
    assert "1E+2" not in text and "0.1300" not in text
    assert " 100 18.00 13% 1,800.00 234.00 2,034.00 " in text
    assert " 2.5 12,345.50 免税 30,863.75 0.00 30,863.75 " in text


def test_a_held_order_names_its_hold_reason_and_detail_in_chinese(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    task_id = on_hold_task(app, alice)  # credit limit 1, an order of 226.00
    b = signed_in(web(app), "bob")
    text = _text(b, f"/tasks/{task_id}")
    assert "需处理: 信用额度超限" in text
    assert "异常原因 信用额度超限: 信用敞口 226.00 超过信用额度 1.00" in text
    assert "CREDIT" not in text
    assert task_row(app, task_id).title.endswith(": CREDIT")  # the report reads the code
    assert "Credit limit exceeded" in _text(b, f"/tasks/{task_id}?lang=en")


def test_why_is_this_waiting_is_told_in_chinese_from_the_report(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    user(app, "boss", role="supervisor")
    task_id = on_hold_task(app, alice)
    clerk = _text(signed_in(web(app), "bob"), f"/tasks/{task_id}")
    why = clerk[clerk.index("为什么在等待？") : clerk.index("流程图")]
    assert "当前状态: 异常" in why
    assert "等待人工处理: 订单" in why
    assert "重新检查 → 已提交" in why
    assert "强制通过 → 已审核 (仅限主管)" in why
    assert "取消 → 已取消" in why
    assert not re.search(r"[a-z]{4,}", why), why  # no trigger, state or guard names
    boss = _text(signed_in(web(app), "boss"), f"/tasks/{task_id}")
    assert "强制通过 → 已审核 (需要填写原因)" in boss


def test_an_override_without_a_reason_shows_the_task_again_with_the_reason_asked_for(
    app: App,
) -> None:
    alice = user(app, "alice")
    user(app, "boss", role="supervisor")
    task_id = on_hold_task(app, alice)
    b = signed_in(web(app), "boss")
    b.post(f"/tasks/{task_id}/claim")
    before = _snap(app)
    response = b.post(f"/tasks/{task_id}/complete", {"outcome": "override", "comment": " "})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="outcome-refused"' in page and "强制通过需要填写原因" in page
    assert "已被他人先行修改" not in page and 'action="/tasks/' in page  # the task page itself
    assert _snap(app) == before
    done = b.post(f"/tasks/{task_id}/complete", {"outcome": "override", "comment": "客户已预付"})
    assert done.status_code == 302 and task_row(app, task_id).outcome == "override"


def test_a_stale_version_still_gets_the_conflict_page(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    task_id = on_hold_task(app, alice)
    b = signed_in(web(app), "bob")
    before = _snap(app)
    form = {"outcome": "recheck", "version": "1"}
    response = b.post(f"/tasks/{task_id}/complete", form)
    assert response.status_code == 409
    assert 'id="outcome-refused"' not in response.get_data(as_text=True)
    assert _snap(app) == before


def test_a_clerk_pressing_override_learns_only_a_supervisor_may(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    task_id = on_hold_task(app, alice)
    b = signed_in(web(app), "bob")
    before = _snap(app)
    response = b.post(f"/tasks/{task_id}/complete", {"outcome": "override", "comment": "急单"})
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "只有主管可以执行此操作。" in page and "急单" in page  # the comment is kept
    assert _snap(app) == before  # not even claimed


def test_a_second_approval_by_the_same_clerk_is_refused_with_the_guard_named(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    task_id = review_task(app, alice)
    b = signed_in(web(app), "bob")
    assert b.post(f"/tasks/{task_id}/complete", {"outcome": "approve"}).status_code == 302
    again = task_of_instance(app, task_id)
    b.post(f"/tasks/{again}/claim")
    response = b.post(f"/tasks/{again}/complete", {"outcome": "approve"})
    assert response.status_code == 422
    assert "不能执行: 每人只能批准一次" in response.get_data(as_text=True)
    mine = _text(b, f"/tasks/{again}")
    assert "批准 → 复核 (每人只能批准一次)" in mine


def task_of_instance(app: App, task_id: int) -> int:
    """The open task that followed ``task_id`` on its instance (a review's second round)."""
    instance_id = task_row(app, task_id).instance_id
    with app.engine.session_factory() as s:
        return int(
            s.scalar(
                select(tasks.c.id).where(
                    tasks.c.instance_id == instance_id, tasks.c.status == "open"
                )
            )
            or 0
        )


def offered(b: Browser, done: int) -> str:
    """The "next task" offer on the inbox after completing ``done``."""
    page = b.page(f"/inbox/?done={done}")
    return page[page.index('class="offer"') : page.index("</div>", page.index('class="offer"'))]


def test_claim_next_skips_a_review_the_clerk_already_approved(app: App) -> None:
    alice = user(app, "alice")
    user(app, "clerk1")
    user(app, "clerk2")
    first = review_task(app, alice)
    site = web(app)
    clerk1, clerk2 = signed_in(site, "clerk1"), signed_in(site, "clerk2")
    assert clerk1.post(f"/tasks/{first}/complete", {"outcome": "approve"}).status_code == 302
    second = task_of_instance(app, first)
    assert task_row(app, second).status == "open"

    response = clerk1.post("/inbox/claim-next")
    assert response.headers["Location"].endswith("/inbox/?queue=group")
    assert task_row(app, second).assignee_id is None
    assert f"/tasks/{second}" not in offered(clerk1, first)

    assert f"/tasks/{second}" in offered(clerk2, first)
    response = clerk2.post("/inbox/claim-next")
    assert response.headers["Location"].endswith(f"/tasks/{second}")
    assert task_row(app, second).assignee_id is not None


def test_claim_next_never_hands_a_clerk_the_review_of_their_own_order(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    own = review_task(app, alice)
    held = on_hold_task(app, alice)  # recheck: anyone may
    b = signed_in(web(app), "alice")
    response = b.post("/inbox/claim-next")
    assert response.headers["Location"].endswith(f"/tasks/{held}")
    assert b.post("/inbox/claim-next").headers["Location"].endswith("/inbox/?queue=group")
    assert task_row(app, own).assignee_id is None
