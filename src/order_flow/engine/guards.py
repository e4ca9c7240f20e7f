"""The engine's own guards: rules that read only the instance and its audit trail.

Guards that need order or invoice data (stock, invoices, deliveries) belong to
the domain services and are registered next to these by the bootstrap.
"""

from __future__ import annotations

from sqlalchemy import select

from order_flow.engine.registry import Guard, GuardContext, Registry, guard_registry
from order_flow.store.tables import audit


def reason_given(ctx: GuardContext) -> bool:
    """The actor wrote a reason (overrides, rejections, red-letter requests)."""
    return bool((ctx.reason or "").strip())


def reviewer_not_creator(ctx: GuardContext) -> bool:
    """Nobody reviews or signs off what they entered themselves."""
    return ctx.actor.name != ctx.instance.created_by


def reviewer_not_preparer(ctx: GuardContext) -> bool:
    """The invoice reviewer is neither the instance's creator nor its named preparer."""
    preparer = (ctx.instance.context or {}).get("prepared_by")
    return ctx.actor.name not in {ctx.instance.created_by, preparer}


def _round_events(ctx: GuardContext) -> list[tuple[str, str, list[str]]]:
    """(trigger, actor, actor groups) of the self-loops since the instance entered its state.

    A 'round' is the current visit to the state: re-entering it from another state
    (say after on_hold) starts a fresh round, so old approvals do not count twice.
    """
    rows = ctx.session.execute(
        select(audit.c.trigger, audit.c.actor, audit.c.from_state, audit.c.to_state, audit.c.data)
        .where(
            audit.c.instance_id == ctx.instance.id,
            audit.c.kind.in_(("transition", "start", "migrate")),
        )
        .order_by(audit.c.id.desc())
    ).all()
    state = ctx.instance.state
    out: list[tuple[str, str, list[str]]] = []
    for r in rows:
        if r.to_state != state or r.from_state != state:
            break
        out.append((r.trigger or "", r.actor, list((r.data or {}).get("groups", []))))
    return out


def second_distinct_reviewer(ctx: GuardContext) -> bool:
    """Someone other than this actor has already approved in this round."""
    return any(t == ctx.trigger and a != ctx.actor.name for t, a, _ in _round_events(ctx))


def first_approval_by_actor(ctx: GuardContext) -> bool:
    """This actor has not yet approved in this round (no approving twice)."""
    return not any(t == ctx.trigger and a == ctx.actor.name for t, a, _ in _round_events(ctx))


def all_signed_off(ctx: GuardContext) -> bool:
    """With this sign-off, every group in ``context.signoff_groups`` has signed."""
    required = set((ctx.instance.context or {}).get("signoff_groups") or [])
    signed = {g for t, _, groups in _round_events(ctx) if t == ctx.trigger for g in groups}
    signed |= set(ctx.actor.groups)
    return required <= signed


ENGINE_GUARDS: dict[str, Guard] = {
    "reason_given": reason_given,
    "reviewer_not_creator": reviewer_not_creator,
    "reviewer_not_preparer": reviewer_not_preparer,
    "second_distinct_reviewer": second_distinct_reviewer,
    "first_approval_by_actor": first_approval_by_actor,
    "all_signed_off": all_signed_off,
}


def engine_guards() -> Registry[Guard]:
    registry = guard_registry()
    for name, fn in ENGINE_GUARDS.items():
        registry.add(name, fn)
    return registry
