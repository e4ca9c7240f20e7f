"""The inbox and the task page: queues, claim next, access by URL, escaping."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from order_flow.bootstrap import App
from order_flow.store.tables import candidates, tasks
from tests.e2e.ui_support import on_hold_task, signed_in, task_row, user, web
from tests.integration.helpers import snapshot

XSS_NAMES = ("<script>alert(1)</script>有限公司", '"><img src=x onerror=alert(1)>有限公司')


def _snap(app: App) -> dict[str, list[tuple[object, ...]]]:
    with app.engine.session_factory() as s:
        return snapshot(s)


def test_the_inbox_shows_counts_and_rows_of_each_queue(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    first = on_hold_task(app, alice)
    on_hold_task(app, alice)
    app.tasks.claim(first, alice)
    b = signed_in(web(app), "bob")
    page = b.page("/inbox/?queue=group")
    assert 'data-queue="group"' in page
    assert page.count('class="task-row"') == 1  # alice holds the other one
    mine = signed_in(web(app), "alice").page("/inbox/?queue=mine")
    assert mine.count('class="task-row"') == 1 and f"/tasks/{first}" in mine


def test_claim_next_takes_the_task_nearest_its_sla_first(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    low = on_hold_task(app, alice, priority="urgent")
    soon = on_hold_task(app, alice, priority="low")
    now = app.engine.clock()
    with app.engine.session_factory.begin() as s:  # the low one breaches in 10 minutes
        for t, due in ((low, now + timedelta(hours=3)), (soon, now + timedelta(minutes=10))):
            s.execute(update(tasks).where(tasks.c.id == t).values(due_at=due))
            s.execute(update(candidates).where(candidates.c.task_id == t).values(due_at=due))
    b = signed_in(web(app), "bob")
    response = b.post("/inbox/claim-next")
    assert response.headers["Location"].endswith(f"/tasks/{soon}")
    assert task_row(app, soon).assignee_id is not None
    response = b.post("/inbox/claim-next")
    assert response.headers["Location"].endswith(f"/tasks/{low}")


def test_a_clerk_cannot_see_claim_or_complete_a_task_outside_their_groups(app: App) -> None:
    alice = user(app, "alice")
    user(app, "wendy", groups=("warehouse",))
    task_id = on_hold_task(app, alice)
    b = signed_in(web(app), "wendy")
    before = _snap(app)
    assert b.client.get(f"/tasks/{task_id}").status_code == 404
    assert b.post(f"/tasks/{task_id}/claim").status_code == 404
    assert b.post(f"/tasks/{task_id}/complete", {"outcome": "cancel"}).status_code == 404
    assert b.post(f"/tasks/{task_id}/comment", {"body": "hi"}).status_code == 404
    assert b.client.get("/tasks/999999").status_code == 404
    assert _snap(app) == before


def test_a_clerk_cannot_claim_or_complete_a_task_another_clerk_holds(app: App) -> None:
    alice = user(app, "alice")
    bob = user(app, "bob")
    user(app, "carol")
    task_id = on_hold_task(app, alice)
    app.tasks.claim(task_id, bob)
    c = signed_in(web(app), "carol")
    before = _snap(app)
    assert c.post(f"/tasks/{task_id}/claim").status_code == 409
    assert c.post(f"/tasks/{task_id}/complete", {"outcome": "cancel"}).status_code == 403
    assert c.post(f"/tasks/{task_id}/unclaim").status_code == 409
    assert _snap(app) == before


def test_extra_form_fields_are_ignored(app: App) -> None:
    alice = user(app, "alice")
    bob = user(app, "bob")
    boss = user(app, "boss", role="supervisor")
    task_id = on_hold_task(app, alice)
    b = signed_in(web(app), "bob")
    extra = {"assignee_id": str(boss.user_id), "status": "completed", "role": "admin"}
    assert b.post(f"/tasks/{task_id}/claim", extra).status_code == 302
    row = task_row(app, task_id)
    assert row.assignee_id == bob.user_id and row.status == "open"
    assert app.users.get("bob").role == "clerk"


def test_completing_a_task_moves_the_order_and_offers_the_next_one(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    task_id = on_hold_task(app, alice)
    waiting = on_hold_task(app, alice)
    b = signed_in(web(app), "bob")
    page = b.page(f"/tasks/{task_id}")
    assert "<svg" in page and "state current" in page  # the diagram, state highlighted
    response = b.post(f"/tasks/{task_id}/complete", {"outcome": "recheck", "comment": "额度已调整"})
    assert response.status_code == 302 and "done=" in response.headers["Location"]
    assert task_row(app, task_id).status == "completed"
    inbox = b.page(response.headers["Location"])
    assert f"/tasks/{waiting}" in inbox  # the next one is offered
    assert "额度已调整" in b.page(f"/tasks/{task_id}")  # the comment is in the timeline


def test_a_hostile_customer_name_renders_escaped_on_the_inbox_and_task_pages(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    ids = [on_hold_task(app, alice, name=n) for n in XSS_NAMES]
    b = signed_in(web(app), "bob")
    pages = [b.page("/inbox/?queue=group")] + [b.page(f"/tasks/{i}") for i in ids]
    for page in pages:
        assert "<script>alert(1)</script>" not in page
        assert "<img src=x onerror" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0]


def test_a_clerk_adds_a_contact_to_the_customer_log_from_the_task(app: App) -> None:
    alice = user(app, "alice")
    user(app, "bob")
    task_id = on_hold_task(app, alice)
    b = signed_in(web(app), "bob")
    form = {"channel": "phone", "direction": "out", "summary": "已电话确认交期"}
    assert b.post(f"/tasks/{task_id}/contact", form).status_code == 302
    assert "已电话确认交期" in b.page(f"/tasks/{task_id}")
