"""Build one shared ``transitions`` machine per definition version.

The machine validates and routes; the database row is the truth. Usage::

    machine = build_machine(defn, registry.guard)     # once per definition version
    model = attach(machine, row.state)                # per request / job
    try:
        model.trigger("submit", actor=user)           # guards get EventData.kwargs
        row.state = model.state
    finally:
        detach(machine, model)                        # Machine.models holds strong refs
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from transitions import EventData, Machine, State

from order_flow.workflow.definition import WorkflowDefinition

Guard = Callable[[EventData], bool]
GuardResolver = Callable[[str], Guard]


#: ``transitions`` logs two INFO lines per transition ("Finished processing state ...
#: callbacks"): noise in the workers' logs, and a cost on every step where INFO is on.
logging.getLogger("transitions").setLevel(logging.WARNING)


def build_machine(defn: WorkflowDefinition, resolve_guard: GuardResolver) -> Machine:
    """A model-less machine for ``defn``; guards are looked up by name through ``resolve_guard``.

    Raises whatever ``resolve_guard`` raises for an unknown guard name (check with
    ``validate`` first).
    """
    guards = {name: resolve_guard(name) for name in sorted(defn.guard_names)}
    states = [State(s.name, final=s.final) for s in defn.states]
    transitions = [
        {
            "trigger": t.trigger,
            "source": t.source,
            "dest": t.dest,
            "conditions": [guards[g] for g in t.conditions],
            "unless": [guards[g] for g in t.unless],
        }
        for t in defn.transitions
    ]
    return Machine(
        model=None,
        states=states,
        transitions=transitions,
        initial=defn.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
        name=f"{defn.name}@{defn.content_hash[:12]}",
    )


class InstanceModel:
    """A throw-away model carrying only ``state``; ``transitions`` adds the trigger methods."""

    state: str

    def __repr__(self) -> str:
        return f"<InstanceModel state={getattr(self, 'state', None)!r}>"


def attach(machine: Machine, state: str) -> InstanceModel:
    """Add a fresh model to ``machine`` at ``state`` (not at the initial state)."""
    model = InstanceModel()
    machine.add_model(model, initial=state)
    return model


def detach(machine: Machine, model: object) -> None:
    """Remove ``model`` so the shared machine keeps no reference to it."""
    machine.remove_model(model)
