"""What changed between two versions of one workflow definition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from order_flow.workflow.definition import StateSpec, WorkflowDefinition

Edge = tuple[str, str, str]  # (trigger, source, dest)


@dataclass(frozen=True)
class DefinitionDiff:
    added_states: tuple[str, ...] = ()
    removed_states: tuple[str, ...] = ()
    added_transitions: tuple[Edge, ...] = ()
    removed_transitions: tuple[Edge, ...] = ()
    changed_states: tuple[str, ...] = ()  # same name, different step, task or final

    @property
    def is_empty(self) -> bool:
        return not (
            self.added_states
            or self.removed_states
            or self.added_transitions
            or self.removed_transitions
            or self.changed_states
        )


def _behaviour(state: StateSpec) -> dict[str, Any]:
    # Labels are presentation only, so they do not count as a change.
    canonical = state.to_canonical()
    return {k: canonical[k] for k in ("final", "step", "task")}


def diff(old: WorkflowDefinition, new: WorkflowDefinition) -> DefinitionDiff:
    old_states = {s.name: s for s in old.states}
    new_states = {s.name: s for s in new.states}
    old_edges = {t.key for t in old.transitions}
    new_edges = {t.key for t in new.transitions}
    return DefinitionDiff(
        added_states=tuple(n for n in new_states if n not in old_states),
        removed_states=tuple(n for n in old_states if n not in new_states),
        added_transitions=tuple(sorted(new_edges - old_edges)),
        removed_transitions=tuple(sorted(old_edges - new_edges)),
        changed_states=tuple(
            n
            for n, s in new_states.items()
            if n in old_states and _behaviour(old_states[n]) != _behaviour(s)
        ),
    )
