"""Human tasks: claim, unclaim, complete, reassign, unassign, comment."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM, Actor
from order_flow.errors import (
    NotFoundError,
    PermissionDeniedError,
    TaskStateError,
    TransitionNotAllowedError,
    ValidationError,
)
from order_flow.store.tables import audit, candidates, comments, tasks
from tests.integration.helpers import add_user, snapshot, state_of


def order_on_hold(app: App, creator: Actor) -> tuple[int, int]:
    started = app.engine.start("order", "order", "7", creator, context={"number": "SO-7"})
    app.engine.fire(started.instance_id, "submit", creator)
    held = app.engine.fire(
        started.instance_id, "hold", SYSTEM, context_update={"hold_reason": "DATA"}
    )
    return started.instance_id, held.task_ids[0]


def test_a_clerk_of_the_group_claims_and_completes_a_task_which_fires_its_outcome(
    app: App,
) -> None:
    alice = add_user(app, "alice")
    bob = add_user(app, "bob")
    instance_id, task_id = order_on_hold(app, alice)
    app.tasks.claim(task_id, bob)
    result = app.tasks.complete(task_id, "recheck", bob, comment="客户补充了地址")
    assert (result.from_state, result.to_state) == ("on_hold", "submitted")
    with app.engine.session_factory() as s:
        status, outcome, closed_by = s.execute(
            select(tasks.c.status, tasks.c.outcome, tasks.c.closed_by).where(tasks.c.id == task_id)
        ).one()
        kinds = list(s.scalars(select(audit.c.kind).where(audit.c.task_id == task_id)))
        body = s.scalar(select(comments.c.body))
    assert (status, outcome, closed_by) == ("completed", "recheck", "bob")
    assert kinds == ["claim", "comment", "complete"]
    assert body == "客户补充了地址"


def test_second_clerk_cannot_claim_a_claimed_task(app: App) -> None:
    alice, bob, carol = (add_user(app, n) for n in ("alice", "bob", "carol"))
    _, task_id = order_on_hold(app, alice)
    app.tasks.claim(task_id, bob)
    with pytest.raises(TaskStateError, match="claimed by someone else"):
        app.tasks.claim(task_id, carol)


def test_a_claimed_task_leaves_the_group_queue_and_returns_on_unclaim(app: App) -> None:
    alice, bob = add_user(app, "alice"), add_user(app, "bob")
    _, task_id = order_on_hold(app, alice)

    def unclaimed() -> bool:
        with app.engine.session_factory() as s:
            return bool(s.scalar(select(candidates.c.unclaimed)))

    app.tasks.claim(task_id, bob)
    assert not unclaimed()
    app.tasks.unclaim(task_id, bob)
    assert unclaimed()


def test_a_clerk_outside_the_candidate_groups_cannot_see_or_claim_the_task(app: App) -> None:
    alice = add_user(app, "alice")
    picker = add_user(app, "picker", groups=("warehouse",))
    _, task_id = order_on_hold(app, alice)
    with pytest.raises(NotFoundError):
        app.tasks.claim(task_id, picker)
    with pytest.raises(NotFoundError):
        app.tasks.complete(task_id, "recheck", picker)


def test_only_a_supervisor_may_reassign_or_unassign(app: App) -> None:
    alice, bob, carol = (add_user(app, n) for n in ("alice", "bob", "carol"))
    boss = add_user(app, "boss", role="supervisor")
    _, task_id = order_on_hold(app, alice)
    with app.engine.session_factory() as s:
        before = snapshot(s)
    with pytest.raises(PermissionDeniedError):
        app.tasks.reassign(task_id, carol.user_id or 0, bob)
    with pytest.raises(PermissionDeniedError):
        app.tasks.unassign(task_id, bob)
    with app.engine.session_factory() as s:
        assert snapshot(s) == before
    app.tasks.reassign(task_id, carol.user_id or 0, boss)
    with app.engine.session_factory() as s:
        assert s.scalar(select(tasks.c.assignee_id)) == carol.user_id
        data = s.scalar(select(audit.c.data).where(audit.c.kind == "reassign"))
    assert data == {"from": None, "to": carol.user_id}
    app.tasks.unassign(task_id, boss)
    with app.engine.session_factory() as s:
        assert s.scalar(select(tasks.c.assignee_id)) is None


def test_reassigning_to_someone_outside_the_groups_is_refused(app: App) -> None:
    alice = add_user(app, "alice")
    boss = add_user(app, "boss", role="supervisor")
    picker = add_user(app, "picker", groups=("warehouse",))
    _, task_id = order_on_hold(app, alice)
    with pytest.raises(ValidationError, match="assignee_id"):
        app.tasks.reassign(task_id, picker.user_id or 0, boss)


def test_completing_with_an_unknown_outcome_names_the_field(app: App) -> None:
    alice, bob = add_user(app, "alice"), add_user(app, "bob")
    _, task_id = order_on_hold(app, alice)
    with pytest.raises(ValidationError) as info:
        app.tasks.complete(task_id, "approve", bob)
    assert "outcome" in info.value.errors


def test_a_refused_outcome_leaves_the_task_open_and_unchanged(app: App) -> None:
    alice = add_user(app, "alice")
    boss = add_user(app, "boss", role="supervisor")
    instance_id, task_id = order_on_hold(app, alice)
    with app.engine.session_factory() as s:
        before = snapshot(s)
    with pytest.raises(TransitionNotAllowedError, match="reason_given"):
        app.tasks.complete(task_id, "override", boss)  # an override needs a reason
    with app.engine.session_factory() as s:
        assert snapshot(s) == before
    app.tasks.complete(task_id, "override", boss, comment="老客户, 已电话确认")
    assert state_of(app, instance_id)[0] == "approved"


def test_a_clerk_cannot_complete_with_a_supervisor_outcome(app: App) -> None:
    alice, bob = add_user(app, "alice"), add_user(app, "bob")
    instance_id, task_id = order_on_hold(app, alice)
    with pytest.raises(PermissionDeniedError):
        app.tasks.complete(task_id, "override", bob, comment="please")
    assert state_of(app, instance_id) == ("on_hold", 3)


def test_an_empty_comment_is_refused(app: App) -> None:
    alice = add_user(app, "alice")
    _, task_id = order_on_hold(app, alice)
    with pytest.raises(ValidationError, match="body"):
        app.tasks.comment(task_id, alice, "   ")


def test_double_review_needs_two_different_people_neither_the_creator(app: App) -> None:
    alice, bob, carol = (add_user(app, n) for n in ("alice", "bob", "carol"))
    started = app.engine.start("order", "order", "8", alice, context={"number": "SO-8"})
    instance_id = started.instance_id
    app.engine.fire(instance_id, "submit", alice)
    first = app.engine.fire(instance_id, "needs_review", SYSTEM)
    with pytest.raises(TransitionNotAllowedError, match="reviewer_not_creator"):
        app.tasks.complete(first.task_ids[0], "approve", alice)
    second = app.tasks.complete(first.task_ids[0], "approve", bob)
    assert second.to_state == "review"  # one approval is not enough
    with pytest.raises(TransitionNotAllowedError):
        app.tasks.complete(second.task_ids[0], "approve", bob)  # bob cannot approve twice
    done = app.tasks.complete(second.task_ids[0], "approve", carol)
    assert done.to_state == "approved"
