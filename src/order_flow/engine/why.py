""" "Why is this instance waiting?" from its state, open tasks and jobs, and guards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.core import Engine
from order_flow.engine.registry import GuardContext
from order_flow.store.tables import outbox, tasks


@dataclass(frozen=True)
class OpenTask:
    id: int
    title: str
    assignee_id: int | None
    due_at: datetime | None
    outcomes: dict[str, str]


@dataclass(frozen=True)
class OpenJob:
    id: int
    step: str
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class PossibleMove:
    trigger: str
    dest: str
    actors: tuple[str, ...]
    failing_guards: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.failing_guards


@dataclass(frozen=True)
class WhyReport:
    instance_id: int
    workflow: str
    version: int
    state: str
    state_label: str
    final: bool
    tasks: tuple[OpenTask, ...]
    jobs: tuple[OpenJob, ...]
    moves: tuple[PossibleMove, ...]

    def summary(self) -> str:
        """One line a clerk can read."""
        if self.final:
            return f"finished in '{self.state}'"
        parts = [f"in '{self.state}'"]
        if self.jobs:
            parts.append(
                "waiting for step(s) "
                + ", ".join(f"{j.step} ({j.status}, {j.attempts} attempt(s))" for j in self.jobs)
            )
        if self.tasks:
            parts.append("waiting for a person: " + "; ".join(t.title for t in self.tasks))
        blocked = [m for m in self.moves if not m.ready]
        if blocked:
            parts.append(
                "blocked: "
                + "; ".join(f"{m.trigger} needs {', '.join(m.failing_guards)}" for m in blocked)
            )
        return ", ".join(parts)


def why(engine: Engine, instance_id: int, actor: Actor = SYSTEM, lang: str = "zh") -> WhyReport:
    with engine.session_factory() as s:
        row = engine.load(s, instance_id)
        loaded = engine.definitions.get(s, row.definition_id)
        spec = loaded.definition.state(row.state)
        open_tasks = s.execute(
            select(tasks.c.id, tasks.c.title, tasks.c.assignee_id, tasks.c.due_at, tasks.c.outcomes)
            .where(tasks.c.instance_id == instance_id, tasks.c.status == "open")
            .order_by(tasks.c.id)
        ).all()
        jobs = s.execute(
            select(
                outbox.c.id, outbox.c.step, outbox.c.status, outbox.c.attempts, outbox.c.last_error
            )
            .where(
                outbox.c.instance_id == instance_id,
                outbox.c.status.in_(("pending", "published", "failed")),
            )
            .order_by(outbox.c.id)
        ).all()
        ctx = GuardContext(s, row, "", actor, None, {}, engine.clock())
        moves = []
        for t in loaded.definition.transitions_from(row.state):
            failing = tuple(
                engine.failing_guards(
                    t, GuardContext(ctx.session, row, t.trigger, actor, None, {}, ctx.now)
                )
            )
            moves.append(PossibleMove(t.trigger, t.dest, t.actors, failing))
        return WhyReport(
            instance_id,
            row.workflow,
            loaded.version,
            row.state,
            spec.display(lang),
            spec.final,
            tuple(
                OpenTask(t.id, t.title, t.assignee_id, t.due_at, dict(t.outcomes or {}))
                for t in open_tasks
            ),
            tuple(OpenJob(j.id, j.step, j.status, j.attempts, j.last_error) for j in jobs),
            tuple(moves),
        )
