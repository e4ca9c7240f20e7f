"""Whether an actor may take a task's outcome now: the role and the guards, as the
engine would judge them, without firing anything.

The task page uses it to explain a refused outcome; claim next to skip the tasks a
clerk could not complete (say the second approval of a double review for the clerk
who gave the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from order_flow.engine.actors import Actor
from order_flow.engine.registry import GuardContext

if TYPE_CHECKING:
    from order_flow.bootstrap import App

#: Outcomes that hand a task back instead of doing it: nearly anyone may take them, so
#: they do not make a task one the clerk can complete (unless a task has no other).
SEND_BACK_OUTCOMES = frozenset({"reject", "cancel"})
#: Stands in for the comment a clerk would write: a reason is always within reach.
PLACEHOLDER_REASON = "(reason to be given)"


@dataclass(frozen=True)
class Refusal:
    """Why an actor may not take an outcome now.

    ``roles``: the roles that may (set when the actor's role may fire none of the
    outcome's transitions); ``guards``: the guards refusing the closest transition
    (``"not x"`` for an ``unless`` guard that holds). Both empty: the outcome leads
    nowhere from the instance's current state (it moved on meanwhile).
    """

    roles: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        return not self.roles and not self.guards


def refusal_in(
    app: App, s: Session, instance_id: int, trigger: str, actor: Actor, reason: str | None
) -> Refusal | None:
    """None when ``actor`` may fire ``trigger`` on the instance now (with ``reason``)."""
    engine = app.engine
    row = engine.load(s, instance_id)
    loaded = engine.definitions.get(s, row.definition_id)
    options = loaded.candidates(row.state, trigger)
    if not options:
        return Refusal()
    allowed = [t for t in options if actor.may_fire(t.actors)]
    if not allowed:
        roles = dict.fromkeys(r for t in options for r in t.actors)
        return Refusal(roles=tuple(roles))
    now = engine.clock()
    failing = []
    for t in allowed:
        bad = engine.failing_guards(t, GuardContext(s, row, trigger, actor, reason, {}, now))
        if not bad:
            return None
        failing.append(tuple(bad))
    return Refusal(guards=min(failing, key=len))


def completable_in(app: App, s: Session, task: Any, actor: Actor) -> bool:
    """Could ``actor`` complete ``task`` (a tasks row: instance_id, kind, outcomes)?"""
    outcomes: dict[str, str] = dict(task.outcomes or {})
    if task.kind != "human" or not outcomes:
        return True  # incidents: retry / resolve by anyone who sees them
    working = {o: t for o, t in outcomes.items() if o not in SEND_BACK_OUTCOMES}
    for trigger in dict.fromkeys((working or outcomes).values()):
        if refusal_in(app, s, task.instance_id, trigger, actor, PLACEHOLDER_REASON) is None:
            return True
    return False
