"""Delegation while a clerk is away: a time-boxed substitute takes their work.

While a delegation is current, tasks assigned to the away clerk (already, or by a
supervisor's reassignment) go to the substitute, and the audit event says who the
substitute acts for. ``apply_delegations`` makes a delegation that starts later take
effect; beat should call it with the other timers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from order_flow.engine.actors import Actor
from order_flow.errors import NotFoundError, PermissionDeniedError, ValidationError
from order_flow.store.models import Delegation
from order_flow.store.tables import audit, rowcount, tasks, users

if TYPE_CHECKING:
    from order_flow.bootstrap import App


@dataclass(frozen=True)
class Away:
    """A current delegation, seen from the away clerk."""

    substitute_id: int
    substitute: str
    until: datetime


@dataclass(frozen=True)
class DelegationRow:
    id: int
    user: str
    substitute: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    active: bool


def away_now(s: Session, now: datetime) -> dict[int, Away]:
    """Away user id -> their current substitute."""
    rows = s.execute(
        select(Delegation.user_id, Delegation.substitute_id, users.c.username, Delegation.ends_at)
        .join(users, users.c.id == Delegation.substitute_id)
        .where(
            Delegation.cancelled_at.is_(None),
            Delegation.starts_at <= now,
            Delegation.ends_at > now,
        )
    )
    return {r.user_id: Away(r.substitute_id, r.username, r.ends_at) for r in rows}


def audit_delegate(
    app: App,
    s: Session,
    task_id: int,
    instance_id: int,
    state: str,
    to_name: str,
    away: str,
    now: datetime,
) -> None:
    """The audit event: the substitute took the task, acting for the away clerk."""
    app.engine.audit(
        s,
        instance_id,
        "delegate",
        None,
        state,
        state,
        Actor(to_name, "clerk", acting_for=away),
        None,
        now,
        task_id=task_id,
        data={"from": away, "to": to_name},
    )


class DelegationService:
    def __init__(self, app: App) -> None:
        self.app = app

    def _now(self) -> datetime:
        now: datetime = self.app.engine.clock()
        return now

    def delegate(
        self,
        user_id: int,
        substitute_id: int,
        starts_at: datetime,
        ends_at: datetime,
        actor: Actor,
        reason: str = "",
    ) -> int:
        """While ``user_id`` is away, their work goes to ``substitute_id``; the new id."""
        _require_supervisor(actor)
        errors: dict[str, str] = {}
        if ends_at <= starts_at:
            errors["ends_at"] = "must be after the start"
        elif ends_at <= self._now():
            errors["ends_at"] = "must be in the future"
        if user_id == substitute_id:
            errors["substitute_id"] = "must be someone else"
        with self.app.engine.uow() as uow:
            s = uow.session
            active = {r.id: r.active for r in s.execute(select(users.c.id, users.c.active))}
            if not active.get(user_id):
                errors["user_id"] = "no such active user"
            if not active.get(substitute_id):
                errors.setdefault("substitute_id", "no such active user")
            overlap = and_(
                Delegation.cancelled_at.is_(None),
                Delegation.starts_at < ends_at,
                Delegation.ends_at > starts_at,
            )
            if s.scalar(select(Delegation.id).where(overlap, Delegation.user_id == user_id)):
                errors.setdefault("starts_at", "this person already has a substitute then")
            if s.scalar(select(Delegation.id).where(overlap, Delegation.user_id == substitute_id)):
                errors.setdefault("substitute_id", "the substitute is away then too")
            if s.scalar(select(Delegation.id).where(overlap, Delegation.substitute_id == user_id)):
                errors.setdefault("user_id", "this person stands in for someone then")
            if errors:
                raise ValidationError(errors)
            row = Delegation(
                user_id=user_id,
                substitute_id=substitute_id,
                starts_at=starts_at,
                ends_at=ends_at,
                reason=(reason or "").strip(),
                created_by=actor.name,
                created_at=self._now(),
            )
            s.add(row)
            s.flush()
            new_id = row.id
            uow.commit()
        self.apply_delegations()
        return new_id

    def cancel(self, delegation_id: int, actor: Actor) -> None:
        """End a delegation now (tasks already moved stay with the substitute)."""
        _require_supervisor(actor)
        with self.app.engine.uow() as uow:
            done = rowcount(
                uow.session.execute(
                    update(Delegation)
                    .where(Delegation.id == delegation_id, Delegation.cancelled_at.is_(None))
                    .values(cancelled_at=self._now())
                )
            )
            if done != 1:
                raise NotFoundError(f"delegation {delegation_id} does not exist or has ended")
            uow.commit()

    def list(self, include_past: bool = False) -> list[DelegationRow]:
        now = self._now()
        sub = users.alias("sub")
        stmt = (
            select(
                Delegation.id,
                users.c.username,
                sub.c.username.label("substitute"),
                Delegation.starts_at,
                Delegation.ends_at,
                Delegation.reason,
                Delegation.created_by,
            )
            .join(users, users.c.id == Delegation.user_id)
            .join(sub, sub.c.id == Delegation.substitute_id)
            .where(Delegation.cancelled_at.is_(None))
            .order_by(Delegation.starts_at, Delegation.id)
        )
        if not include_past:
            stmt = stmt.where(Delegation.ends_at > now)
        with self.app.engine.session_factory() as s:
            return [
                DelegationRow(
                    id=r.id,
                    user=r.username,
                    substitute=r.substitute,
                    starts_at=r.starts_at,
                    ends_at=r.ends_at,
                    reason=r.reason,
                    created_by=r.created_by,
                    active=r.starts_at <= now < r.ends_at,
                )
                for r in s.execute(stmt)
            ]

    def substitute_for(self, user_id: int) -> Away | None:
        with self.app.engine.session_factory() as s:
            return away_now(s, self._now()).get(user_id)

    def acting_for(self, task_id: int, username: str) -> str | None:
        """Whom ``username`` stands in for on this task, if it reached them by delegation.

        The web layer passes it as ``Actor.acting_for``, so the audit says "acting for".
        """
        with self.app.engine.session_factory() as s:
            row = s.execute(
                select(audit.c.kind, audit.c.actor, audit.c.acting_for)
                .where(audit.c.task_id == task_id, audit.c.kind.in_(("delegate", "reassign")))
                .order_by(audit.c.id.desc())
                .limit(1)
            ).first()
        if row is None or row.kind != "delegate" or row.actor != username:
            return None
        return row.acting_for

    def apply_delegations(self) -> int:
        """Hand the open tasks of people away now to their substitutes; how many moved."""
        now = self._now()
        moved = 0
        with self.app.engine.uow() as uow:
            s = uow.session
            away = away_now(s, now)
            if not away:
                return 0
            rows = s.execute(
                select(
                    tasks.c.id,
                    tasks.c.instance_id,
                    tasks.c.state,
                    tasks.c.assignee_id,
                    users.c.username,
                )
                .join(users, users.c.id == tasks.c.assignee_id)
                .where(tasks.c.status == "open", tasks.c.assignee_id.in_(list(away)))
            ).all()
            for r in rows:
                sub = away[r.assignee_id]
                done = rowcount(
                    s.execute(
                        update(tasks)
                        .where(
                            tasks.c.id == r.id,
                            tasks.c.status == "open",
                            tasks.c.assignee_id == r.assignee_id,
                        )
                        .values(assignee_id=sub.substitute_id, claimed_at=now)
                    )
                )
                if done == 1:
                    audit_delegate(
                        self.app, s, r.id, r.instance_id, r.state, sub.substitute, r.username, now
                    )
                    moved += 1
            uow.commit()
        return moved


def _require_supervisor(actor: Actor) -> None:
    if not actor.is_supervisor:
        raise PermissionDeniedError("only a supervisor may do that")
