"""Human tasks: claim, unclaim, complete, reassign, unassign, comment.

A claim is one conditional UPDATE, so of any number of racing claims exactly
one wins; the database row decides, not a read made earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from order_flow.engine.actors import Actor
from order_flow.engine.core import Engine, FireResult
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import (
    NotFoundError,
    PermissionDeniedError,
    TaskStateError,
    ValidationError,
)
from order_flow.store.tables import candidates, comments, rowcount, tasks, user_groups, users


@dataclass(frozen=True)
class TaskRef:
    id: int
    instance_id: int
    state: str
    status: str
    assignee_id: int | None
    outcomes: dict[str, str]
    groups: frozenset[str]


class TaskService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reads ------------------------------------------------------------------

    def get(self, s: Session, task_id: int) -> TaskRef:
        row = s.execute(
            select(
                tasks.c.id,
                tasks.c.instance_id,
                tasks.c.state,
                tasks.c.status,
                tasks.c.assignee_id,
                tasks.c.outcomes,
            ).where(tasks.c.id == task_id)
        ).first()
        if row is None:
            raise NotFoundError(f"task {task_id} does not exist")
        groups = frozenset(
            s.scalars(select(candidates.c.group_name).where(candidates.c.task_id == task_id))
        )
        return TaskRef(
            row.id,
            row.instance_id,
            row.state,
            row.status,
            row.assignee_id,
            dict(row.outcomes or {}),
            groups,
        )

    def may_see(self, actor: Actor, task: TaskRef) -> bool:
        if actor.is_supervisor or actor.is_system:
            return True
        if task.assignee_id is not None and task.assignee_id == actor.user_id:
            return True
        return actor.in_any_group(task.groups)

    def visible(self, s: Session, task_id: int, actor: Actor) -> TaskRef:
        """The task, or NotFoundError when the actor may not see it (no existence leak)."""
        task = self.get(s, task_id)
        if not self.may_see(actor, task):
            raise NotFoundError(f"task {task_id} does not exist")
        return task

    # -- actions ------------------------------------------------------------------

    def claim(self, task_id: int, actor: Actor) -> None:
        with self.engine.uow() as uow:
            self.claim_in(uow, task_id, actor)
            uow.commit()

    def claim_in(self, uow: UnitOfWork, task_id: int, actor: Actor) -> None:
        s = uow.session
        task = self.visible(s, task_id, actor)
        if actor.user_id is None:
            raise PermissionDeniedError("only a user can claim a task")
        if not (actor.in_any_group(task.groups) or actor.is_supervisor):
            raise PermissionDeniedError(f"task {task_id} is not for your groups")
        now = self.engine.clock()
        won = rowcount(
            s.execute(
                update(tasks)
                .where(
                    tasks.c.id == task_id, tasks.c.status == "open", tasks.c.assignee_id.is_(None)
                )
                .values(assignee_id=actor.user_id, claimed_at=now)
            )
        )
        if won != 1:
            current = self.get(s, task_id)
            if current.status != "open":
                raise TaskStateError(f"task {task_id} is already {current.status}")
            if current.assignee_id == actor.user_id:
                return  # claiming what you hold already changes nothing
            raise TaskStateError(f"task {task_id} was claimed by someone else")
        self._set_unclaimed(s, task_id, False)
        self._audit(s, task, "claim", actor, now)

    def unclaim(self, task_id: int, actor: Actor) -> None:
        with self.engine.uow() as uow:
            s = uow.session
            task = self.visible(s, task_id, actor)
            if actor.user_id is None:
                raise PermissionDeniedError("only the user holding a task can unclaim it")
            now = self.engine.clock()
            done = rowcount(
                s.execute(
                    update(tasks)
                    .where(
                        tasks.c.id == task_id,
                        tasks.c.status == "open",
                        tasks.c.assignee_id == actor.user_id,
                    )
                    .values(assignee_id=None, claimed_at=None)
                )
            )
            if done != 1:
                raise TaskStateError(f"task {task_id} is not open and claimed by you")
            self._set_unclaimed(s, task_id, True)
            self._audit(s, task, "unclaim", actor, now)
            uow.commit()

    def complete(
        self,
        task_id: int,
        outcome: str,
        actor: Actor,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> FireResult:
        """Close the task and fire its outcome's trigger in the same transaction."""
        with self.engine.uow() as uow:
            result = self.complete_in(uow, task_id, outcome, actor, comment, expected_version)
            uow.commit()
        return result

    def complete_in(
        self,
        uow: UnitOfWork,
        task_id: int,
        outcome: str,
        actor: Actor,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> FireResult:
        s = uow.session
        task = self.visible(s, task_id, actor)
        if outcome not in task.outcomes:
            raise ValidationError({"outcome": f"must be one of {', '.join(task.outcomes)}"})
        if task.status != "open":
            raise TaskStateError(f"task {task_id} is already {task.status}")
        if task.assignee_id is None:
            self.claim_in(uow, task_id, actor)  # completing an unclaimed task claims it
        elif task.assignee_id != actor.user_id:
            raise PermissionDeniedError(f"task {task_id} is assigned to someone else")
        now = self.engine.clock()
        closed = rowcount(
            s.execute(
                update(tasks)
                .where(
                    tasks.c.id == task_id,
                    tasks.c.status == "open",
                    tasks.c.assignee_id == actor.user_id,
                )
                .values(status="completed", outcome=outcome, closed_at=now, closed_by=actor.name)
            )
        )
        if closed != 1:
            raise TaskStateError(f"task {task_id} changed while you were completing it")
        self._set_unclaimed(s, task_id, False)
        if comment:
            self._comment(s, task, actor, comment, now)
        self._audit(s, task, "complete", actor, now, reason=comment, data={"outcome": outcome})
        return self.engine.fire_in(
            uow,
            task.instance_id,
            task.outcomes[outcome],
            actor,
            reason=comment,
            expected_version=expected_version,
            audit_data={"task_id": task_id, "outcome": outcome},
        )

    def reassign(self, task_id: int, assignee_id: int, actor: Actor) -> None:
        """Supervisor action: give an open task to a user of one of its groups."""
        with self.engine.uow() as uow:
            self.reassign_in(uow, task_id, assignee_id, actor)
            uow.commit()

    def reassign_in(self, uow: UnitOfWork, task_id: int, assignee_id: int, actor: Actor) -> None:
        s = uow.session
        self._require_supervisor(actor)
        task = self.get(s, task_id)
        target = s.execute(
            select(users.c.username, users.c.active).where(users.c.id == assignee_id)
        ).first()
        if target is None or not target.active:
            raise ValidationError({"assignee_id": "no such active user"})
        groups = set(
            s.scalars(select(user_groups.c.group_name).where(user_groups.c.user_id == assignee_id))
        )
        if task.groups and groups.isdisjoint(task.groups):
            raise ValidationError(
                {
                    "assignee_id": f"{target.username} is in none of the "
                    f"task's groups ({', '.join(sorted(task.groups))})"
                }
            )
        now = self.engine.clock()
        self._set_assignee(s, task_id, assignee_id, now)
        self._audit(
            s, task, "reassign", actor, now, data={"from": task.assignee_id, "to": assignee_id}
        )

    def unassign(self, task_id: int, actor: Actor) -> None:
        with self.engine.uow() as uow:
            s = uow.session
            self._require_supervisor(actor)
            task = self.get(s, task_id)
            now = self.engine.clock()
            self._set_assignee(s, task_id, None, now)
            self._audit(s, task, "unassign", actor, now, data={"from": task.assignee_id})
            uow.commit()

    def comment(self, task_id: int, actor: Actor, body: str) -> None:
        body = (body or "").strip()
        if not body:
            raise ValidationError({"body": "a comment cannot be empty"})
        with self.engine.uow() as uow:
            s = uow.session
            task = self.visible(s, task_id, actor)
            self._comment(s, task, actor, body, self.engine.clock())
            uow.commit()

    # -- pieces ---------------------------------------------------------------

    @staticmethod
    def _require_supervisor(actor: Actor) -> None:
        if not actor.is_supervisor:
            raise PermissionDeniedError("only a supervisor may do that")

    def _set_assignee(
        self, s: Session, task_id: int, assignee_id: int | None, now: datetime
    ) -> None:
        """Give an open task to someone (or back to its groups when None)."""
        done = rowcount(
            s.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == "open")
                .values(assignee_id=assignee_id, claimed_at=None if assignee_id is None else now)
            )
        )
        if done != 1:
            raise TaskStateError(f"task {task_id} is not open")
        self._set_unclaimed(s, task_id, assignee_id is None)

    @staticmethod
    def _set_unclaimed(s: Session, task_id: int, value: bool) -> None:
        s.execute(update(candidates).where(candidates.c.task_id == task_id).values(unclaimed=value))

    def _comment(self, s: Session, task: TaskRef, actor: Actor, body: str, now: datetime) -> None:
        s.execute(insert(comments), dict(task_id=task.id, author=actor.name, body=body, at=now))
        self._audit(s, task, "comment", actor, now, reason=body)

    def _audit(
        self,
        s: Session,
        task: TaskRef,
        kind: str,
        actor: Actor,
        now: datetime,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.engine.audit(
            s,
            task.instance_id,
            kind,
            None,
            task.state,
            task.state,
            actor,
            reason,
            now,
            task_id=task.id,
            data=data,
        )


def actor_for(s: Session, username: str, acting_for: str | None = None) -> Actor:
    """Build an Actor from a stored user."""
    row = s.execute(
        select(users.c.id, users.c.username, users.c.role, users.c.active).where(
            users.c.username == username
        )
    ).first()
    if row is None or not row.active:
        raise NotFoundError(f"no active user '{username}'")
    groups = frozenset(
        s.scalars(select(user_groups.c.group_name).where(user_groups.c.user_id == row.id))
    )
    return Actor(row.username, row.role, groups, row.id, acting_for)
