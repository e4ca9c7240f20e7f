"""Start many instances at once, optionally firing one trigger on each: bulk intake.

The same rows as ``Engine.start_in`` then ``Engine.fire_in`` per instance (the
instance, a ``start`` audit event, a ``transition`` audit event, and what the states
open), written with one statement per kind instead of one per instance. Only
simple moves take the fast path: a trigger with one transition, no guards, and
states that open no task. Anything else goes through ``fire_in`` one by one, so
the rules are the engine's either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert

from order_flow.engine.actors import Actor
from order_flow.engine.core import PRIORITY_RANK, Engine, FireResult, audit_row, queue_for
from order_flow.engine.publisher import JobRef
from order_flow.engine.uow import UnitOfWork
from order_flow.errors import PermissionDeniedError
from order_flow.store.tables import audit, instances, outbox


@dataclass(frozen=True)
class NewInstance:
    subject_id: str
    context: Mapping[str, Any] = field(default_factory=dict)
    priority: str = "normal"


def start_many_in(
    engine: Engine,
    uow: UnitOfWork,
    workflow: str,
    subject_type: str,
    items: Sequence[NewInstance],
    actor: Actor,
    *,
    fire: str | None = None,
) -> list[FireResult]:
    """Start one instance per item (in order) and fire ``fire`` on each; one result each."""
    if not items:
        return []
    for item in items:
        if item.priority not in PRIORITY_RANK:
            raise ValueError(f"priority must be one of {', '.join(PRIORITY_RANK)}")
    s = uow.session
    loaded = engine.definitions.latest(s, workflow)
    definition = loaded.definition
    initial = definition.state(initial_name := definition.initial)
    options = loaded.candidates(initial_name, fire) if fire else []
    simple = initial.task is None and initial.step is None
    if fire:
        simple = simple and len(options) == 1
        simple = simple and not options[0].conditions and not options[0].unless
    if not simple:  # guards, tasks or a refused trigger: the engine's own path decides
        return [
            _one_by_one(engine, uow, workflow, subject_type, item, actor, fire) for item in items
        ]
    if fire and not actor.may_fire(options[0].actors):
        raise PermissionDeniedError(
            f"role '{actor.role}' may not fire '{fire}' from '{initial_name}'"
        )
    dest = definition.state(options[0].dest) if fire else initial
    if dest.task is not None:
        return [
            _one_by_one(engine, uow, workflow, subject_type, item, actor, fire) for item in items
        ]

    now = engine.clock()
    rows = [
        dict(
            workflow=workflow,
            definition_id=loaded.id,
            subject_type=subject_type,
            subject_id=str(item.subject_id),
            # Born in the state the trigger leads to: nobody can see the instance
            # between its start and the move, so the row is written once, as it ends
            # up; the audit trail still records both events.
            state=dest.name,
            version=2 if fire else 1,
            priority=PRIORITY_RANK[item.priority],
            context=dict(item.context),
            created_by=actor.name,
            created_at=now,
            updated_at=now,
            entered_at=now,
        )
        for item in items
    ]
    result = s.execute(
        insert(instances).returning(instances.c.id, sort_by_parameter_order=True), rows
    )
    ids = [int(i) for i in result.scalars().all()]
    # Subjects already written get the state now; those inserted after (bulk intake
    # knows the instance ids first) are written with ``state`` set by the caller.
    engine.mirror_state(s, subject_type, [str(item.subject_id) for item in items], dest.name, now)
    events = [audit_row(i, "start", None, None, initial_name, actor, now) for i in ids]
    if not fire:
        s.execute(insert(audit), events)
        return [FireResult(i, "start", "", initial_name, 1) for i in ids]

    data = None if actor.is_system else {"groups": sorted(actor.groups)}
    events += [
        audit_row(i, "transition", fire, initial_name, dest.name, actor, now, data=data)
        for i in ids
    ]
    s.execute(insert(audit), events)
    job_ids: list[int | None] = [None] * len(ids)
    if dest.step is not None:
        job_ids = list(
            _enqueue(
                uow,
                ids,
                [PRIORITY_RANK[item.priority] for item in items],
                dest.name,
                dest.step,
                now,
            )
        )
    return [
        FireResult(i, fire, initial_name, dest.name, 2, (), () if j is None else (j,))
        for i, j in zip(ids, job_ids, strict=True)
    ]


def _enqueue(
    uow: UnitOfWork, ids: list[int], ranks: list[int], state: str, step: str, now: Any
) -> list[int]:
    """The entry jobs of ``state``, keyed like Engine._enter keys them."""
    jobs = []
    for i, rank in zip(ids, ranks, strict=True):
        queue = queue_for(step, rank)
        jobs.append(
            dict(
                instance_id=i,
                state=state,
                step=step,
                queue=queue,
                idempotency_key=f"{i}:2:{step}",
                status="pending",
                attempts=0,
                available_at=now,
                created_at=now,
                payload={},
            )
        )
    stmt = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)
    job_ids = [int(j) for j in uow.session.execute(stmt, jobs).scalars().all()]
    for job_id, job in zip(job_ids, jobs, strict=True):
        uow.jobs.append(
            JobRef(job_id, job["instance_id"], step, job["queue"], job["idempotency_key"])
        )
    return job_ids


def _one_by_one(
    engine: Engine,
    uow: UnitOfWork,
    workflow: str,
    subject_type: str,
    item: NewInstance,
    actor: Actor,
    fire: str | None,
) -> FireResult:
    started = engine.start_in(
        uow, workflow, subject_type, item.subject_id, actor,
        context=item.context, priority=item.priority,
    )  # fmt: skip
    if fire is None:
        return started
    return engine.fire_in(uow, started.instance_id, fire, actor)
