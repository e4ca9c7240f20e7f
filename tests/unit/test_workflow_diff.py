"""What changed between two versions of a definition."""

from __future__ import annotations

from order_flow.workflow import diff, parse_definition

OLD = """\
name: mini
initial: draft
states:
  - name: draft
    label: {zh: 草稿}
  - name: review
    task: {title: "复核 {number}", candidates: [sales], outcomes: {approve: approve}}
  - name: done
    final: true
  - name: dropped
    final: true
transitions:
  - {trigger: submit, source: draft, dest: review, actor: clerk}
  - {trigger: approve, source: review, dest: done, actor: clerk}
  - {trigger: drop, source: draft, dest: dropped, actor: clerk}
"""


def test_identical_definitions_have_an_empty_diff() -> None:
    a, b = parse_definition(OLD, "a.yaml"), parse_definition(OLD, "b.yaml")
    assert diff(a, b).is_empty


def test_diff_reports_added_and_removed_states_and_transitions() -> None:
    new = (
        OLD.replace("  - name: dropped\n    final: true\n", "  - name: closed\n    final: true\n")
        .replace("trigger: drop, source: draft, dest: dropped", "trigger: close, source: draft,"
                 " dest: closed")
    )
    d = diff(parse_definition(OLD, "a.yaml"), parse_definition(new, "a.yaml"))
    assert d.added_states == ("closed",)
    assert d.removed_states == ("dropped",)
    assert d.added_transitions == (("close", "draft", "closed"),)
    assert d.removed_transitions == (("drop", "draft", "dropped"),)
    assert d.changed_states == ()
    assert not d.is_empty


def test_diff_reports_a_state_whose_task_changed_but_not_a_relabelled_one() -> None:
    new = OLD.replace("candidates: [sales]", "candidates: [sales, finance]").replace("草稿", "稿")
    d = diff(parse_definition(OLD, "a.yaml"), parse_definition(new, "a.yaml"))
    assert d.changed_states == ("review",)
    assert d.added_states == d.removed_states == ()
