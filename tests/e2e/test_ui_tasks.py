"""The inbox and the task page: queues, claim next, access by URL, escaping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from order_flow.bootstrap import App
from order_flow.engine.timers import run_timers
from order_flow.services.delegation import DelegationService
from order_flow.services.inbox import QUEUES, InboxService
from order_flow.store.tables import audit, candidates, tasks
from tests.e2e.ui_support import on_hold_task, signed_in, task_row, user, web
from tests.integration.helpers import snapshot

XSS_NAMES = ("<script>alert(1)</script>有限公司", '"><img src=x onerror=alert(1)>有限公司')


def _snap(app: App) -> dict[str, list[tuple[object, ...]]]:
    with app.engine.session_factory() as s:
        return snapshot(s)


def test_the_inbox_shows_counts_and_rows_of_each_queue(app: App) -> None:
    alice = user(app, "alice")
    bob = user(app, "bob")
    first = on_hold_task(app, alice)
    on_hold_task(app, alice)
    app.tasks.claim(first, alice)
    b = signed_in(web(app), "bob")
    page = b.page("/inbox/?queue=group")
    assert 'data-queue="group"' in page
    assert page.count('class="task-row"') == 1  # alice holds the other one
    mine = signed_in(web(app), "alice").page("/inbox/?queue=mine")
    assert mine.count('class="task-row"') == 1 and f"/tasks/{first}" in mine
    zero = dict.fromkeys(QUEUES, 0)
    assert InboxService(app).counts(alice) == zero | {"mine": 1, "group": 1}
    assert InboxService(app).counts(bob) == zero | {"group": 1}
    assert page.count('<span class="count">1</span>') == 1  # bob's group tab


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


def _events(app: App, task_id: int) -> list[tuple[str, str, str | None]]:
    with app.engine.session_factory() as s:
        rows = s.execute(
            select(audit.c.kind, audit.c.actor, audit.c.acting_for)
            .where(audit.c.task_id == task_id)
            .order_by(audit.c.id)
        )
        return [(r.kind, r.actor, r.acting_for) for r in rows]


def test_completing_a_delegated_task_records_whom_the_substitute_acted_for(app: App) -> None:
    alice = user(app, "alice")
    bob = user(app, "bob")
    carol = user(app, "carol")
    boss = user(app, "boss", role="supervisor")
    task_id = on_hold_task(app, alice)
    app.tasks.claim(task_id, bob)
    now = app.engine.clock()
    assert bob.user_id is not None and carol.user_id is not None
    DelegationService(app).delegate(
        bob.user_id, carol.user_id, now - timedelta(hours=1), now + timedelta(days=3), boss
    )
    assert task_row(app, task_id).assignee_id == carol.user_id
    c = signed_in(web(app), "carol")
    c.post(f"/tasks/{task_id}/comment", {"body": "代办处理"})
    response = c.post(f"/tasks/{task_id}/complete", {"outcome": "recheck", "comment": "已核对"})
    assert response.status_code == 302
    events = _events(app, task_id)
    assert ("delegate", "carol", "bob") in events
    assert ("comment", "carol", "bob") in events
    assert ("complete", "carol", "bob") in events
    page = c.page(f"/tasks/{task_id}?lang=en")
    assert "carol (acting for bob)" in page  # the timeline names whom carol stood in for


def test_a_task_carol_claimed_herself_is_not_marked_acting_for(app: App) -> None:
    alice = user(app, "alice")
    user(app, "carol")
    task_id = on_hold_task(app, alice)
    c = signed_in(web(app), "carol")
    c.post(f"/tasks/{task_id}/claim")
    c.post(f"/tasks/{task_id}/complete", {"outcome": "recheck"})
    assert ("complete", "carol", None) in _events(app, task_id)


def test_the_timers_hand_work_over_when_a_delegation_starts_later(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = user(app, "alice")
    bob = user(app, "bob")
    carol = user(app, "carol")
    boss = user(app, "boss", role="supervisor")
    task_id = on_hold_task(app, alice)
    app.tasks.claim(task_id, bob)
    now = app.engine.clock()
    assert bob.user_id is not None and carol.user_id is not None
    starts = now + timedelta(hours=2)
    DelegationService(app).delegate(
        bob.user_id, carol.user_id, starts, starts + timedelta(days=1), boss
    )
    run_timers(app)
    assert task_row(app, task_id).assignee_id == bob.user_id  # not yet
    monkeypatch.setattr(app.engine, "clock", lambda: starts + timedelta(minutes=1))
    run_timers(app)
    assert task_row(app, task_id).assignee_id == carol.user_id
    assert ("delegate", "carol", "bob") in _events(app, task_id)
