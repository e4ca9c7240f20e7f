"""The supervisor console over HTTP: access, workload, (bulk) reassign with a preview,
unassign, delegation, incidents by error with bulk retry, backlog and stuck lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.engine.outbox import StepDataError, handle_failure
from order_flow.store.tables import audit, outbox, tasks
from tests.e2e.ui_support import on_hold_task, signed_in, task_row, user, web
from tests.integration.helpers import snapshot


@dataclass
class Team:
    flask: Flask
    ann: Actor  # clerk, sales
    ben: Actor  # clerk, sales
    eve: Actor  # clerk, finance only
    boss: Actor  # supervisor


@pytest.fixture
def team(app: App) -> Team:
    app.catalog.seed_tax_rates()
    return Team(
        web(app),
        user(app, "ann"),
        user(app, "ben"),
        user(app, "eve", groups=("finance",)),
        user(app, "boss", role="supervisor", groups=("sales",)),
    )


def claimed_by(app: App, actor: Actor, n: int, creator: Actor) -> list[int]:
    ids = []
    for _ in range(n):
        task_id = on_hold_task(app, creator)
        app.tasks.claim(task_id, actor)
        ids.append(task_id)
    return ids


def assignee(app: App, task_id: int) -> int | None:
    return task_row(app, task_id).assignee_id


def test_a_clerk_gets_403_on_every_supervisor_page_and_action_and_nothing_changes(
    app: App, team: Team
) -> None:
    [task_id] = claimed_by(app, team.ann, 1, team.boss)
    clerk = signed_in(team.flask, "ben")
    with app.engine.session_factory() as s:
        before = snapshot(s)
    for path in ("/supervisor/", "/supervisor/tasks"):
        assert clerk.client.get(path).status_code == 403
    posts = {
        "/supervisor/reassign/preview": {"task_ids": task_id, "to_user_id": team.ben.user_id},
        "/supervisor/reassign/confirm": {
            "task_ids": task_id,
            "to_user_id": team.ben.user_id,
            f"expect_{task_id}": team.ann.user_id,
        },
        f"/supervisor/tasks/{task_id}/reassign": {"to_user_id": team.ben.user_id},
        f"/supervisor/tasks/{task_id}/unassign": {},
        "/supervisor/delegations": {
            "user_id": team.ann.user_id,
            "substitute_id": team.ben.user_id,
            "starts_at": "2020-01-01T09:00",
            "ends_at": "2099-01-01T09:00",
        },
        "/supervisor/delegations/1/cancel": {},
        "/supervisor/incidents/retry": {"task_ids": task_id},
    }
    for path, data in posts.items():
        assert clerk.post(path, data).status_code == 403, path
    with app.engine.session_factory() as s:
        assert snapshot(s) == before


def test_signed_out_visitors_are_sent_to_the_login_page(app: App, team: Team) -> None:
    response = team.flask.test_client().get("/supervisor/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_workload_shows_claimed_tasks_breaches_and_the_oldest_per_clerk(
    app: App, team: Team
) -> None:
    ids = claimed_by(app, team.ann, 2, team.boss)
    with app.engine.uow() as uow:
        uow.session.execute(
            update(tasks)
            .where(tasks.c.id == ids[0])
            .values(due_at=app.engine.clock() - timedelta(hours=1))
        )
        uow.commit()
    on_hold_task(app, team.boss)  # unclaimed, in sales
    page = signed_in(team.flask, "boss").page("/supervisor/")
    row = re.search(r'<tr data-user="ann">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num[^"]*">(\d+)</td>', row.group(1))
    assert cells == ["2", "1", "1"]  # claimed, unclaimed in their groups, breached
    eve = re.search(r'<tr data-user="eve">(.*?)</tr>', page, re.S)
    assert eve is not None
    assert re.findall(r'<td class="num[^"]*">(\d+)</td>', eve.group(1)) == ["0", "0", "0"]


def test_a_bulk_reassign_of_a_whole_queue_shows_a_preview_first_then_moves_everything(
    app: App, team: Team
) -> None:
    ids = claimed_by(app, team.ann, 3, team.boss)
    boss = signed_in(team.flask, "boss")
    response = boss.post(
        "/supervisor/reassign/preview",
        {"queue_of": team.ann.user_id, "to_user_id": team.ben.user_id},
    )
    assert response.status_code == 200
    preview = response.get_data(as_text=True)
    for task_id in ids:
        assert f'data-task="{task_id}" class="ok"' in preview
    assert all(assignee(app, t) == team.ann.user_id for t in ids)  # nothing moved yet

    form = dict(re.findall(r'<input type="hidden" name="(expect_\d+)" value="(\d*)">', preview))
    data: dict[str, object] = {"task_ids": ids, "to_user_id": team.ben.user_id, **form}
    response = boss.post("/supervisor/reassign/confirm", data)
    assert response.status_code == 302
    assert all(assignee(app, t) == team.ben.user_id for t in ids)
    with app.engine.session_factory() as s:
        kinds = s.scalars(
            select(audit.c.actor).where(audit.c.kind == "reassign", audit.c.task_id.in_(ids))
        ).all()
    assert kinds == ["boss"] * 3


def test_a_bulk_reassign_moves_nothing_when_a_task_changed_after_the_preview(
    app: App, team: Team
) -> None:
    ids = claimed_by(app, team.ann, 2, team.boss)
    boss = signed_in(team.flask, "boss")
    data: dict[str, object] = {
        "task_ids": ids,
        "to_user_id": team.ben.user_id,
        **{f"expect_{t}": team.ann.user_id for t in ids},
    }
    app.tasks.unclaim(ids[1], team.ann)  # changes after the preview was shown
    response = boss.post("/supervisor/reassign/confirm", data)
    assert response.status_code == 409
    assert assignee(app, ids[0]) == team.ann.user_id
    assert assignee(app, ids[1]) is None


def test_a_preview_marks_tasks_the_target_may_not_take(app: App, team: Team) -> None:
    [task_id] = claimed_by(app, team.ann, 1, team.boss)
    boss = signed_in(team.flask, "boss")
    response = boss.post(
        "/supervisor/reassign/preview", {"task_ids": task_id, "to_user_id": team.eve.user_id}
    )
    assert f'data-task="{task_id}" class="blocked"' in response.get_data(as_text=True)
    assert 'id="confirm"' not in response.get_data(as_text=True)


def test_a_supervisor_reassigns_one_task_and_unassigns_another(app: App, team: Team) -> None:
    first, second = claimed_by(app, team.ann, 2, team.boss)
    boss = signed_in(team.flask, "boss")
    assert (
        boss.post(
            f"/supervisor/tasks/{first}/reassign", {"to_user_id": team.ben.user_id}
        ).status_code
        == 302
    )
    assert boss.post(f"/supervisor/tasks/{second}/unassign").status_code == 302
    assert assignee(app, first) == team.ben.user_id
    assert assignee(app, second) is None
    page = boss.page(f"/supervisor/tasks?assignee={team.ben.user_id}")
    assert f'data-task="{first}"' in page and f'data-task="{second}"' not in page


def test_extra_form_fields_do_not_change_what_a_reassign_does(app: App, team: Team) -> None:
    [task_id] = claimed_by(app, team.ann, 1, team.boss)
    boss = signed_in(team.flask, "boss")
    boss.post(
        f"/supervisor/tasks/{task_id}/reassign",
        {"to_user_id": team.ben.user_id, "assignee_id": team.boss.user_id, "status": "completed"},
    )
    row = task_row(app, task_id)
    assert (row.assignee_id, row.status) == (team.ben.user_id, "open")


def test_a_delegation_hands_the_away_clerks_tasks_to_the_substitute_acting_for_them(
    app: App, team: Team
) -> None:
    ids = claimed_by(app, team.ann, 2, team.boss)
    boss = signed_in(team.flask, "boss")
    response = boss.post(
        "/supervisor/delegations",
        {
            "user_id": team.ann.user_id,
            "substitute_id": team.ben.user_id,
            "starts_at": "2020-01-01T09:00",
            "ends_at": "2099-01-01T18:00",
            "reason": "年假",
        },
    )
    assert response.status_code == 302
    assert all(assignee(app, t) == team.ben.user_id for t in ids)
    with app.engine.session_factory() as s:
        events = s.execute(
            select(audit.c.actor, audit.c.acting_for).where(
                audit.c.kind == "delegate", audit.c.task_id.in_(ids)
            )
        ).all()
    assert [tuple(e) for e in events] == [("ben", "ann")] * 2

    # New work for ann goes to ben while she is away.
    fresh = on_hold_task(app, team.boss)
    boss.post(f"/supervisor/tasks/{fresh}/reassign", {"to_user_id": team.ann.user_id})
    assert assignee(app, fresh) == team.ben.user_id
    page = boss.page("/supervisor/")
    assert "年假" in page


def test_a_delegation_needs_a_window_in_the_future_and_another_person(app: App, team: Team) -> None:
    boss = signed_in(team.flask, "boss")
    for starts, ends, sub in (
        ("2099-01-02T09:00", "2099-01-01T09:00", team.ben),  # ends before it starts
        ("2020-01-01T09:00", "2020-01-02T09:00", team.ben),  # over already
        ("2020-01-01T09:00", "2099-01-01T09:00", team.ann),  # herself
    ):
        boss.post(
            "/supervisor/delegations",
            {
                "user_id": team.ann.user_id,
                "substitute_id": sub.user_id,
                "starts_at": starts,
                "ends_at": ends,
            },
        )
    page = boss.page("/supervisor/")
    assert 'class="flash flash-error"' in page or "flash-error" in page
    with app.engine.session_factory() as s:
        assert s.scalar(select(audit.c.id).where(audit.c.kind == "delegate")) is None
    from order_flow.services.delegation import DelegationService

    assert DelegationService(app).list() == []


def test_incidents_are_grouped_by_error_and_retried_in_bulk(app: App, team: Team) -> None:
    jobs = []
    for _ in range(2):
        on_hold_task(app, team.boss)
    with app.engine.session_factory() as s:
        check_jobs = select(outbox.c.id).where(outbox.c.step == "order.run_checks")
        jobs = list(s.scalars(check_jobs.order_by(outbox.c.id)).all())[:2]
    with app.engine.uow() as uow:  # as if those two had never run
        uow.session.execute(
            update(outbox).where(outbox.c.id.in_(jobs)).values(status="published", attempts=1)
        )
        uow.commit()
    incident_ids = [
        handle_failure(app, job, StepDataError(f"product {job} has no tax code")).incident_task_id
        for job in jobs
    ]
    boss = signed_in(team.flask, "boss")
    page = boss.page("/supervisor/")
    assert page.count('name="group_ids"') == 1  # one group: same error but for the numbers
    # The instances left the job's state meanwhile: retry refuses and says why.
    response = boss.post(
        "/supervisor/incidents/retry", {"group_ids": ",".join(str(i) for i in incident_ids)}
    )
    assert response.status_code == 302
    for task_id in incident_ids:
        assert task_row(app, task_id).status == "open"
    with app.engine.uow() as uow:  # put the instances back where the jobs were
        for job in jobs:
            row = uow.session.execute(select(outbox).where(outbox.c.id == job)).one()
            from order_flow.store.tables import instances

            uow.session.execute(
                update(instances).where(instances.c.id == row.instance_id).values(state=row.state)
            )
        uow.commit()
    boss.post("/supervisor/incidents/retry", {"group_ids": ",".join(str(i) for i in incident_ids)})
    for task_id in incident_ids:
        row = task_row(app, task_id)
        assert (row.status, row.outcome) == ("completed", "retry")
    with app.engine.session_factory() as s:
        assert set(s.scalars(select(outbox.c.status).where(outbox.c.id.in_(jobs)))) == {"pending"}


def test_the_backlog_and_stuck_lists_show_waiting_orders_and_lost_jobs(
    app: App, team: Team
) -> None:
    on_hold_task(app, team.boss)
    with app.engine.uow() as uow:  # a job published long ago and never finished
        uow.session.execute(
            update(outbox)
            .where(outbox.c.id == select(outbox.c.id).limit(1).scalar_subquery())
            .values(status="published", published_at=app.engine.clock() - timedelta(hours=2))
        )
        uow.commit()
    page = signed_in(team.flask, "boss").page("/supervisor/")
    assert 'data-state="order.on_hold"' in page
    assert 'id="stuck"' in page and "order.run_checks" in page
