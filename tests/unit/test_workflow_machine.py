"""One shared transitions machine per definition; rows are attached, fired, then detached."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

import pytest
from transitions import EventData, MachineError

from order_flow.workflow import attach, build_machine, detach, parse_definition

DEFN = parse_definition(
    """\
name: mini
initial: draft
states:
  - name: draft
  - name: review
  - name: approved
    final: true
  - name: cancelled
    final: true
transitions:
  - {trigger: submit, source: draft, dest: review, actor: clerk}
  - {trigger: approve, source: review, dest: approved, actor: clerk, conditions: [two_ok]}
  - {trigger: approve, source: review, dest: review, actor: clerk, unless: [two_ok]}
  - {trigger: cancel, source: [draft, review], dest: cancelled, conditions: [reason_given]}
""",
    "mini.yaml",
)


class Guards:
    """Guards that answer from the trigger's kwargs and remember what they saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []

    def resolve(self, name: str) -> Callable[[EventData], bool]:
        def guard(event: EventData) -> bool:
            self.seen.append((name, dict(event.kwargs)))
            return bool(event.kwargs.get(name, False))

        return guard


def test_guards_receive_event_data_with_the_trigger_kwargs() -> None:
    guards = Guards()
    machine = build_machine(DEFN, guards.resolve)
    model = attach(machine, "draft")
    assert model.trigger("cancel", reason_given=True, actor="li") is True
    assert model.state == "cancelled"
    assert guards.seen == [("reason_given", {"reason_given": True, "actor": "li"})]
    detach(machine, model)


def test_a_refused_guard_returns_false_and_keeps_the_state() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    model = attach(machine, "draft")
    assert getattr(model, "cancel")(reason_given=False) is False
    assert model.state == "draft"
    detach(machine, model)


def test_conditions_and_unless_route_the_same_trigger_to_different_states() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    model = attach(machine, "review")
    assert model.trigger("approve", two_ok=False) is True
    assert model.state == "review"
    assert model.trigger("approve", two_ok=True) is True
    assert model.state == "approved"
    detach(machine, model)


def test_a_model_is_attached_at_its_row_state_not_the_initial_state() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    model = attach(machine, "review")
    assert model.state == "review"
    detach(machine, model)


def test_a_trigger_not_declared_from_the_current_state_raises_machine_error() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    model = attach(machine, "review")
    with pytest.raises(MachineError):
        model.trigger("submit")
    with pytest.raises(AttributeError):  # a name the definition never declares
        model.trigger("teleport")
    detach(machine, model)


def test_no_automatic_to_state_triggers_exist() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    model = attach(machine, "draft")
    assert not any(name.startswith("to_") for name in machine.events)
    assert not hasattr(model, "to_approved")
    detach(machine, model)


def test_final_states_are_marked_final() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    assert machine.get_state("approved").final is True
    assert machine.get_state("review").final is False


def test_the_shared_machine_starts_without_models() -> None:
    assert build_machine(DEFN, Guards().resolve).models == []


def test_detach_leaves_no_reference_to_the_model() -> None:
    machine = build_machine(DEFN, Guards().resolve)
    refs = []
    for state in ("draft", "review", "draft"):
        model = attach(machine, state)
        model.trigger("cancel", reason_given=True)
        detach(machine, model)
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    assert machine.models == []
    assert all(ref() is None for ref in refs)


def test_shipped_order_feasibility_needs_every_sign_off() -> None:
    from pathlib import Path

    from order_flow.workflow import load_file

    order = load_file(Path(__file__).resolve().parents[2] / "workflows" / "order.yaml")
    machine = build_machine(order, Guards().resolve)
    model = attach(machine, "feasibility")
    signer = {"reviewer_not_creator": True}
    assert model.trigger("sign_off", all_signed_off=False, **signer)
    assert model.state == "feasibility"
    assert not model.trigger("sign_off", all_signed_off=True)  # nobody signs off their own order
    assert model.trigger("sign_off", all_signed_off=True, **signer)
    assert model.state == "approved"
    detach(machine, model)
