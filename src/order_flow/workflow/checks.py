"""Semantic checks on a built :class:`WorkflowDefinition` (the graph, names, roles)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Collection

from order_flow.errors import DefinitionProblem
from order_flow.workflow.definition import (
    KNOWN_ROLES,
    PRIORITIES,
    PRIORITY_FROM_SUBJECT,
    StateSpec,
    WorkflowDefinition,
)

_Report = Callable[[int | None, str], None]

# Names become Python attributes on models (``is_<state>``, trigger methods) and diagram ids.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Attributes transitions itself puts on every model.
_RESERVED_TRIGGERS = frozenset({"trigger", "state"})


def reachable_states(defn: WorkflowDefinition) -> set[str]:
    """States reachable from the initial state (the initial state included)."""
    seen = {defn.initial}
    queue = deque([defn.initial])
    while queue:
        current = queue.popleft()
        for t in defn.transitions_from(current):
            if t.dest not in seen:
                seen.add(t.dest)
                queue.append(t.dest)
    return seen


def check_definition(
    defn: WorkflowDefinition,
    known_guards: Collection[str] | None = None,
    known_steps: Collection[str] | None = None,
) -> list[DefinitionProblem]:
    """Every problem in ``defn``; guards and steps are checked only when registries are given."""
    out: list[DefinitionProblem] = []

    def problem(line: int | None, message: str) -> None:
        out.append(DefinitionProblem(defn.path, line or None, message))

    declared: dict[str, int] = {}
    for s in defn.states:
        if s.name in declared:
            problem(s.line, f"duplicate state '{s.name}' (first at line {declared[s.name]})")
        else:
            declared[s.name] = s.line
        if not _IDENTIFIER.fullmatch(s.name):
            problem(s.line, f"state '{s.name}': name must be letters, digits and underscores")

    initial_ok = defn.initial in declared
    if defn.initial and not initial_ok:
        problem(defn.initial_line, f"initial '{defn.initial}' is not a declared state")

    _check_transitions(defn, declared, problem)

    if initial_ok:
        reachable = reachable_states(defn)
        for name, line in declared.items():
            if name not in reachable:
                problem(line, f"state '{name}' is not reachable from '{defn.initial}'")

    for s in defn.states:
        leaving = [t for t in defn.transitions_from(s.name) if t.dest != s.name]
        if s.final and defn.transitions_from(s.name):
            first = defn.transitions_from(s.name)[0]
            problem(first.line, f"final state '{s.name}' has outgoing transition '{first.trigger}'")
        elif not s.final and not leaving and s.name in declared:
            problem(s.line, f"state '{s.name}' is not final and has no way out")
        if s.step is not None and known_steps is not None and s.step not in known_steps:
            problem(s.line, f"state '{s.name}': unknown step '{s.step}'")
        if s.task is not None:
            _check_task(defn, s, problem)

    if known_guards is not None:
        for t in defn.transitions:
            for guard in (*t.conditions, *t.unless):
                if guard not in known_guards:
                    problem(t.line, f"transition '{t.trigger}': unknown guard '{guard}'")
    return out


def _check_transitions(
    defn: WorkflowDefinition, declared: dict[str, int], problem: _Report
) -> None:
    seen: dict[tuple[str, str, frozenset[str], frozenset[str]], int] = {}
    for t in defn.transitions:
        where = f"transition '{t.trigger}'"
        if not _IDENTIFIER.fullmatch(t.trigger) or t.trigger in _RESERVED_TRIGGERS:
            problem(t.line, f"{where}: trigger must be an identifier other than 'trigger'/'state'")
        for end, name in (("source", t.source), ("dest", t.dest)):
            if name not in declared:
                problem(t.line, f"{where}: {end} '{name}' is not a declared state")
        for role in t.actors:
            if role not in KNOWN_ROLES:
                problem(
                    t.line, f"{where}: unknown actor '{role}' (known: {', '.join(KNOWN_ROLES)})"
                )
        if not t.actors:
            problem(t.line, f"{where}: no actor may fire it")
        both = set(t.conditions) & set(t.unless)
        if both:
            problem(t.line, f"{where}: guard '{sorted(both)[0]}' is both a condition and unless")
        key = (t.source, t.trigger, frozenset(t.conditions), frozenset(t.unless))
        if key in seen:
            problem(
                t.line,
                f"{where}: ambiguous, same source '{t.source}' and guards as line {seen[key]}",
            )
        else:
            seen[key] = t.line


def _check_task(defn: WorkflowDefinition, spec: StateSpec, problem: _Report) -> None:
    task, state = spec.task, spec.name
    if task is None:
        return
    where = f"state '{state}': task"
    if task.priority != PRIORITY_FROM_SUBJECT and task.priority not in PRIORITIES:
        allowed = ", ".join((PRIORITY_FROM_SUBJECT, *PRIORITIES))
        problem(task.line, f"{where} priority '{task.priority}' is unknown (use {allowed})")
    if not task.candidates:
        problem(task.line, f"{where} has no candidates")
    if not task.outcomes:
        problem(task.line, f"{where} has no outcomes")
    lines = dict(task.outcome_lines)
    leaving = defn.triggers_from(state)
    for outcome, trigger in task.outcomes.items():
        if trigger not in leaving:
            problem(
                lines.get(outcome, task.line),
                f"{where} outcome '{outcome}': trigger '{trigger}' does not leave '{state}'",
            )
