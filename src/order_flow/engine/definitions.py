"""Deployed workflow versions: store, look up, and keep one machine per version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from transitions import EventData, Machine

from order_flow.engine.registry import GuardContext, Registry
from order_flow.errors import NotFoundError
from order_flow.store.models import WorkflowVersion
from order_flow.workflow.definition import TransitionSpec, WorkflowDefinition
from order_flow.workflow.loader import parse_definition
from order_flow.workflow.machine import attach, build_machine, detach


@dataclass(frozen=True)
class LoadedDefinition:
    """A parsed definition version and its one shared ``transitions`` machine."""

    id: int
    version: int
    definition: WorkflowDefinition
    machine: Machine

    def candidates(self, state: str, trigger: str) -> list[TransitionSpec]:
        return [t for t in self.definition.transitions_from(state) if t.trigger == trigger]

    def route(self, state: str, trigger: str, ctx: GuardContext) -> str | None:
        """The destination the machine picks, or None when every guard refuses."""
        model: Any = attach(self.machine, state)
        try:
            moved = model.trigger(trigger, ctx=ctx)
            return str(model.state) if moved else None
        finally:
            detach(self.machine, model)


@dataclass(frozen=True)
class DeployResult:
    name: str
    version: int
    definition_id: int
    created: bool


class DefinitionStore:
    """Caches parsed versions by id; versions are immutable, so the cache never goes stale."""

    def __init__(self, guards: Registry[Callable[[GuardContext], bool]]) -> None:
        self._guards = guards
        self._cache: dict[int, LoadedDefinition] = {}
        self._lock = threading.Lock()

    def _resolve(self, name: str) -> Callable[[EventData], bool]:
        guard = self._guards[name]

        def call(event: EventData) -> bool:
            return bool(guard(event.kwargs["ctx"]))

        call.__name__ = f"guard_{name}"
        return call

    def load(self, row: WorkflowVersion) -> LoadedDefinition:
        cached = self._cache.get(row.id)
        if cached is not None:
            return cached
        definition = parse_definition(row.source, f"{row.name}@v{row.version}")
        loaded = LoadedDefinition(
            row.id, row.version, definition, build_machine(definition, self._resolve)
        )
        with self._lock:
            return self._cache.setdefault(row.id, loaded)

    def get(self, session: Session, definition_id: int) -> LoadedDefinition:
        cached = self._cache.get(definition_id)
        if cached is not None:
            return cached
        row = session.get(WorkflowVersion, definition_id)
        if row is None:
            raise NotFoundError(f"workflow version id {definition_id} does not exist")
        return self.load(row)

    def version_row(
        self, session: Session, name: str, version: int | None = None
    ) -> WorkflowVersion:
        """A version of ``name``; the newest when ``version`` is None."""
        stmt = select(WorkflowVersion).where(WorkflowVersion.name == name)
        if version is None:
            stmt = stmt.order_by(WorkflowVersion.version.desc()).limit(1)
        else:
            stmt = stmt.where(WorkflowVersion.version == version)
        row = session.scalars(stmt).first()
        if row is None:
            which = "any version" if version is None else f"version {version}"
            raise NotFoundError(
                f"workflow '{name}' has no {which}; run `order-flow workflows deploy`"
            )
        return row

    def latest(self, session: Session, name: str) -> LoadedDefinition:
        return self.load(self.version_row(session, name))

    def versions(self, session: Session, name: str | None = None) -> list[WorkflowVersion]:
        stmt = select(WorkflowVersion).order_by(WorkflowVersion.name, WorkflowVersion.version)
        if name is not None:
            stmt = stmt.where(WorkflowVersion.name == name)
        return list(session.scalars(stmt))

    def deploy(
        self, session: Session, definition: WorkflowDefinition, source: str, by: str = "system"
    ) -> DeployResult:
        """Store ``definition`` as a new version unless the newest has the same hash."""
        latest = session.scalars(
            select(WorkflowVersion)
            .where(WorkflowVersion.name == definition.name)
            .order_by(WorkflowVersion.version.desc())
            .limit(1)
            .with_for_update()
        ).first()
        if latest is not None and latest.content_hash == definition.content_hash:
            return DeployResult(definition.name, latest.version, latest.id, created=False)
        # A file rolled back to older content becomes a new, newest version again.
        number = 1 if latest is None else latest.version + 1
        row = WorkflowVersion(
            name=definition.name,
            version=number,
            content_hash=definition.content_hash,
            source=source,
            path=definition.path,
            deployed_by=by,
        )
        session.add(row)
        session.flush()
        return DeployResult(definition.name, number, row.id, created=True)
