"""Deploying definition files as versions, and migrating running instances."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update

from order_flow.engine.actors import Actor
from order_flow.engine.core import Engine
from order_flow.engine.definitions import DeployResult
from order_flow.errors import DefinitionError, MigrationError
from order_flow.store.tables import instances, outbox, rowcount, tasks
from order_flow.workflow.diff import DefinitionDiff, diff
from order_flow.workflow.loader import check_files, parse_definition


def deploy_files(
    engine: Engine, paths: Iterable[str | Path], by: str = "system"
) -> list[DeployResult]:
    """Validate every file first; deploy all of them, or none if any is invalid."""
    files = _yaml_files(paths)
    problems = check_files(files, engine.guards.names(), engine.steps.names())
    if problems:
        raise DefinitionError(problems)
    results = []
    with engine.uow() as uow:
        for path in files:
            source = path.read_text(encoding="utf-8")
            definition = parse_definition(source, str(path))
            results.append(engine.definitions.deploy(uow.session, definition, source, by))
        uow.commit()
    return results


def _yaml_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
        else:
            out.append(p)
    return out


def diff_versions(engine: Engine, name: str, v1: int, v2: int) -> DefinitionDiff:
    with engine.session_factory() as s:
        a = engine.definitions.load(engine.definitions.version_row(s, name, v1))
        b = engine.definitions.load(engine.definitions.version_row(s, name, v2))
        return diff(a.definition, b.definition)


@dataclass
class MigrationPlan:
    name: str
    from_version: int
    to_version: int
    moves: list[tuple[int, str, str]] = field(default_factory=list)  # (instance, old, new)
    blocked: list[tuple[int, str, str]] = field(default_factory=list)  # (instance, state, why)
    applied: bool = False


def migrate(
    engine: Engine,
    name: str,
    from_version: int,
    to_version: int,
    actor: Actor,
    state_map: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> MigrationPlan:
    """Move the instances on ``from_version`` to ``to_version``.

    Each instance's state is mapped through ``state_map`` (unmapped states keep
    their name) and must exist in the target. If any instance cannot move, nothing
    moves: the plan lists what is blocked. A dry run computes the same plan inside a
    transaction that is always rolled back.
    """
    state_map = dict(state_map or {})
    with engine.uow() as uow:
        s = uow.session
        src = engine.definitions.version_row(s, name, from_version)
        dst = engine.definitions.version_row(s, name, to_version)
        target = engine.definitions.load(dst).definition
        source_def = engine.definitions.load(src).definition
        unknown = sorted(k for k in state_map if k not in {st.name for st in source_def.states})
        if unknown:
            raise MigrationError(
                f"--map names state(s) not in v{from_version}: {', '.join(unknown)}"
            )
        plan = MigrationPlan(name, from_version, to_version)
        rows = s.execute(
            select(
                instances.c.id,
                instances.c.state,
                instances.c.version,
                instances.c.subject_type,
                instances.c.subject_id,
            )
            .where(instances.c.definition_id == src.id)
            .order_by(instances.c.id)
        ).all()
        target_states = {st.name for st in target.states}
        for r in rows:
            new_state = state_map.get(r.state, r.state)
            if new_state in target_states:
                plan.moves.append((r.id, r.state, new_state))
            else:
                plan.blocked.append(
                    (
                        r.id,
                        r.state,
                        f"state '{new_state}' is not in v{to_version}; add --map {r.state}=<state>",
                    )
                )
        if dry_run or plan.blocked:
            return plan  # the with-block rolls back: nothing was written
        now = engine.clock()
        by_id = {r.id: r.version for r in rows}
        subjects = {r.id: (r.subject_type, r.subject_id) for r in rows}
        for instance_id, old, new in plan.moves:
            changed = rowcount(
                s.execute(
                    update(instances)
                    .where(instances.c.id == instance_id, instances.c.version == by_id[instance_id])
                    .values(
                        definition_id=dst.id,
                        state=new,
                        version=by_id[instance_id] + 1,
                        updated_at=now,
                    )
                )
            )
            if changed != 1:
                raise MigrationError(f"instance {instance_id} changed during the migration")
            if old != new:
                subject_type, subject_id = subjects[instance_id]
                engine.mirror_state(s, subject_type, [subject_id], new, now)
                s.execute(
                    update(tasks)
                    .where(tasks.c.instance_id == instance_id, tasks.c.status == "open")
                    .values(state=new)
                )
                s.execute(
                    update(outbox)
                    .where(
                        outbox.c.instance_id == instance_id,
                        outbox.c.status.in_(("pending", "published")),
                    )
                    .values(state=new)
                )
            engine.audit(
                s,
                instance_id,
                "migrate",
                None,
                old,
                new,
                actor,
                f"v{from_version} -> v{to_version}",
                now,
                data={"from_version": from_version, "to_version": to_version},
            )
        uow.commit()
        plan.applied = True
        return plan
