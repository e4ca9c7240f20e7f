"""Human tasks, minimal: my inbox, claim, complete."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import ColumnElement, and_, func, or_, select

from order_flow.engine.actors import Actor
from order_flow.store.tables import candidates, tasks
from web import of_app
from web.api.auth import ANY_USER
from web.api.errors import FieldErrors
from web.api.routing import Call, operation
from web.api.schemas import CompleteIn, TaskQuery
from web.api.work_views import ClaimedOut, TaskDoneOut, TaskOut, TaskPage


def _visible(actor: Actor, mine: bool) -> ColumnElement[bool]:
    """Open tasks: mine only, or also the unclaimed ones of my groups (all, for a supervisor)."""
    own = tasks.c.assignee_id == actor.user_id
    if mine:
        return and_(tasks.c.status == "open", own)
    if actor.is_supervisor:
        return tasks.c.status == "open"
    of_my_groups = select(candidates.c.task_id).where(
        candidates.c.group_name.in_(sorted(actor.groups))
    )
    return and_(
        tasks.c.status == "open",
        or_(own, and_(tasks.c.assignee_id.is_(None), tasks.c.id.in_(of_my_groups))),
    )


@operation(
    "GET", "/tasks", summary="List open tasks", tag="tasks", rule=ANY_USER,
    query=TaskQuery, response=TaskPage,
    description="Urgent first, then by due time. `mine=1`: the tasks assigned to me; "
    "otherwise also the unclaimed tasks of my groups (a supervisor sees every open task).",
)  # fmt: skip
def list_tasks(call: Call) -> TaskPage:
    q, actor = call.query, call.actor
    where = _visible(actor, q.mine)
    with of_app().engine.session_factory() as s:
        total = int(s.scalar(select(func.count(tasks.c.id)).where(where)) or 0)
        rows = s.execute(
            select(tasks)
            .where(where)
            .order_by(tasks.c.priority, tasks.c.due_at, tasks.c.id)
            .limit(q.limit)
            .offset(q.offset)
        ).all()
        groups: dict[int, list[str]] = defaultdict(list)
        ids = [r.id for r in rows]
        if ids:
            pairs = s.execute(
                select(candidates.c.task_id, candidates.c.group_name).where(
                    candidates.c.task_id.in_(ids)
                )
            )
            for task_id, group in pairs:
                groups[task_id].append(group)
    items = [
        TaskOut(
            id=r.id, instance_id=r.instance_id, state=r.state, title=r.title, status=r.status,
            assignee_id=r.assignee_id, priority=r.priority, due_at=r.due_at,
            outcomes={str(k): str(v) for k, v in (r.outcomes or {}).items()},
            groups=sorted(groups[r.id]), created_at=r.created_at,
        )
        for r in rows
    ]  # fmt: skip
    return TaskPage(items=items, total=total, limit=q.limit, offset=q.offset)


@operation(
    "POST", "/tasks/{task_id}/claim", summary="Claim a task", tag="tasks", rule=ANY_USER,
    response=ClaimedOut, errors=(403, 409),
    description="For a user of one of the task's groups (or a supervisor). Of racing "
    "claims exactly one wins; the others get 409.",
)  # fmt: skip
def claim_task(call: Call, task_id: int) -> ClaimedOut:
    of_app().tasks.claim(task_id, call.actor)
    assert call.actor.user_id is not None  # token users always have an id
    return ClaimedOut(task_id=task_id, assignee_id=call.actor.user_id)


@operation(
    "POST", "/tasks/{task_id}/complete", summary="Complete a task", tag="tasks",
    rule=ANY_USER, body=CompleteIn, response=TaskDoneOut, errors=(400, 403, 409, 422),
    description="Fires the outcome's trigger in the same transaction. An unclaimed task "
    "is claimed first; one assigned to someone else is a 403. The workflow's guards "
    "apply (e.g. override needs a supervisor and a comment).",
)  # fmt: skip
def complete_task(call: Call, task_id: int) -> TaskDoneOut:
    b = call.body
    comment = (b.comment or "").strip() or None
    if not b.outcome.strip():
        raise FieldErrors({"outcome": "required"})
    result = of_app().tasks.complete(task_id, b.outcome, call.actor, comment)
    return TaskDoneOut(
        task_id=task_id, instance_id=result.instance_id, trigger=result.trigger,
        from_state=result.from_state, to_state=result.to_state,
    )  # fmt: skip
