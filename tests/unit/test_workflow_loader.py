"""Loading and checking workflow definitions: every problem, with its file and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from order_flow.errors import DefinitionError, DefinitionProblem
from order_flow.workflow import KNOWN_ROLES, load_dir, load_file, parse_definition, validate
from order_flow.workflow.loader import check_files

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "workflows"
BROKEN = Path(__file__).resolve().parent / "fixtures" / "workflows"

GUARDS = (
    "reason_given",
    "no_invoice_issued",
    "all_signed_off",
    "reviewer_not_creator",
    "second_distinct_reviewer",
    "fully_delivered_and_billed",
    "reviewer_not_preparer",
    "fully_reversed",
    "first_approval_by_actor",  # added by the engine team in d99519e
)
STEPS = (
    "order.run_checks",
    "order.reserve_and_invoice",
    "invoice.prepare",
    "invoice.issue",
    "invoice.notify",
    "invoice.release_lines",
)

MINI = """\
name: mini
initial: draft
states:
  - name: draft
    label: {zh: 草稿, en: Draft}
  - name: done
    final: true
transitions:
  - {trigger: finish, source: draft, dest: done, actor: clerk}
"""


def problems_in(name: str) -> list[DefinitionProblem]:
    return check_files([BROKEN / name], GUARDS, STEPS)


def test_shipped_definitions_pass_validation_with_the_registered_guards_and_steps() -> None:
    definitions = load_dir(SHIPPED)
    assert [d.name for d in definitions] == ["invoice", "order"]
    for defn in definitions:
        assert validate(defn, GUARDS, STEPS) == []
    assert check_files([SHIPPED], GUARDS, STEPS) == []


def test_shipped_order_definition_reads_like_the_domain() -> None:
    order = load_file(SHIPPED / "order.yaml")
    assert order.initial == "draft"
    assert order.state("submitted").step == "order.run_checks"
    on_hold = order.state("on_hold").task
    assert on_hold is not None
    assert on_hold.candidates == ("sales",)
    assert on_hold.priority == "from_subject"
    assert on_hold.sla == timedelta(hours=4)
    assert dict(on_hold.outcomes) == {
        "recheck": "recheck",
        "override": "override",
        "cancel": "cancel",
    }
    finals = {s.name for s in order.states if s.final}
    assert finals == {"completed", "closed", "cancelled", "amended"}
    assert set(order.triggers_from("submitted")) >= {
        "checks_passed",
        "needs_review",
        "needs_feasibility",
        "hold",
    }
    feasibility = order.state("feasibility").task
    assert feasibility is not None
    assert feasibility.sla == timedelta(hours=8)  # 1d = 8 business hours
    for spec in order.states:
        assert set(spec.label) == {"zh", "en"}


def test_a_list_of_sources_expands_into_one_transition_per_source() -> None:
    order = load_file(SHIPPED / "order.yaml")
    guarded = ("no_invoice_issued",)
    cancels = [t for t in order.transitions if t.trigger == "cancel" and t.conditions == guarded]
    assert {t.source for t in cancels} == {"on_hold", "feasibility", "review", "approved"}
    assert len({t.line for t in cancels}) == 1


def test_a_minimal_definition_parses_into_frozen_specs() -> None:
    defn = parse_definition(MINI, "mini.yaml")
    assert defn.path == "mini.yaml"
    assert defn.state("draft").label == {"zh": "草稿", "en": "Draft"}
    assert defn.state("draft").line == 4
    (t,) = defn.transitions
    assert (t.trigger, t.source, t.dest) == ("finish", "draft", "done")
    assert (t.actors, t.line) == (("clerk",), 9)
    assert hash(defn) == hash(parse_definition(MINI, "mini.yaml"))
    with pytest.raises(KeyError):
        defn.state("nowhere")


def test_known_roles_are_the_four_documented_ones() -> None:
    assert KNOWN_ROLES == ("system", "clerk", "supervisor", "admin")


@pytest.mark.parametrize(
    ("file", "line", "fragment"),
    [
        ("syntax_error.yaml", 6, "yaml syntax error"),
        ("top_level_not_mapping.yaml", 1, "top level: expected a mapping"),
        ("missing_name.yaml", 1, "missing 'name'"),
        ("missing_initial.yaml", 1, "missing 'initial'"),
        ("initial_not_declared.yaml", 2, "initial 'drfat' is not a declared state"),
        ("duplicate_state.yaml", 7, "duplicate state 'draft' (first at line 4)"),
        ("undeclared_dest.yaml", 9, "transition 'approve_fast': dest 'aproved' is not a declared"),
        ("undeclared_source.yaml", 9, "source 'drat' is not a declared state"),
        ("unreachable_state.yaml", 7, "state 'orphan' is not reachable from 'draft'"),
        ("no_way_out.yaml", 5, "state 'waiting' is not final and has no way out"),
        ("final_with_outgoing.yaml", 9, "final state 'done' has outgoing transition 'reopen'"),
        ("unknown_guard_and_step.yaml", 9, "unknown guard 'moon_is_full'"),
        ("unknown_guard_and_step.yaml", 4, "unknown step 'order.teleport'"),
        ("outcome_not_leaving.yaml", 10, "outcome 'cancel': trigger 'cancel' does not leave"),
        ("ambiguous.yaml", 11, "transition 'decide': ambiguous"),
        ("ambiguous.yaml", 13, "transition 'close': ambiguous"),
        ("bad_values.yaml", 7, "candidates: expected a list of strings"),
        ("bad_values.yaml", 5, "priority 'whenever' is unknown"),
        ("bad_values.yaml", 9, "bad duration '4 hours'"),
        ("bad_values.yaml", 14, "unknown actor 'janitor'"),
        ("unknown_key.yaml", 5, "state 'draft': unknown key 'colour'"),
        ("unknown_key.yaml", 9, "transition 'finish': unknown key 'when'"),
    ],
)
def test_each_broken_copy_reports_its_file_line_and_problem(
    file: str, line: int, fragment: str
) -> None:
    found = problems_in(file)
    matching = [p for p in found if fragment in p.message]
    assert matching, f"no problem containing {fragment!r} in {found}"
    assert matching[0].path == str(BROKEN / file)
    assert matching[0].line == line


@pytest.mark.parametrize(
    "file",
    sorted(p.name for p in BROKEN.glob("*.yaml") if p.name != "unknown_guard_and_step.yaml"),
)
def test_parse_definition_refuses_every_structurally_broken_copy(file: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_file(BROKEN / file)
    assert caught.value.problems
    assert all(p.path == str(BROKEN / file) for p in caught.value.problems)


def test_unknown_guards_and_steps_are_only_known_once_the_registries_are_given() -> None:
    defn = load_file(BROKEN / "unknown_guard_and_step.yaml")  # structurally fine
    assert [p.message for p in validate(defn, GUARDS, STEPS)] == [
        "state 'draft': unknown step 'order.teleport'",
        "transition 'finish': unknown guard 'moon_is_full'",
    ]


def test_a_file_with_several_errors_reports_all_of_them() -> None:
    found = {(p.line, p.message) for p in problems_in("several_errors.yaml")}
    expected = {
        (4, "state 'draft': unknown step 'order.teleport'"),
        (7, "state 'done': final: expected true or false"),
        (8, "duplicate state 'done' (first at line 6)"),
        (9, "state 'lost' is not reachable from 'draft'"),
        (11, "transition 'finish': dest 'dnoe' is not a declared state"),
        (11, "transition 'finish': unknown actor 'robot' "
         "(known: system, clerk, supervisor, admin)"),
        (12, "transition 'finish': ambiguous, same source 'draft' and guards as line 11"),
    }
    assert expected <= found


def test_check_files_expands_a_directory_and_never_raises_for_bad_files() -> None:
    found = check_files([BROKEN], GUARDS, STEPS)
    assert {Path(p.path).name for p in found} == {p.name for p in BROKEN.glob("*.yaml")}


def test_an_unreadable_or_empty_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n", encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    found = check_files([empty, missing], GUARDS, STEPS)
    where = [(Path(p.path).name, p.line) for p in found]
    assert where == [("empty.yaml", None), ("missing.yaml", None)]
    assert "empty" in found[0].message and "cannot read" in found[1].message


def test_content_hash_ignores_whitespace_and_comments() -> None:
    reformatted = "# a comment\n" + MINI.replace("name: mini", "name:   mini   # same")
    reformatted = reformatted.replace("\n  - name: done", "\n\n  - name: done")
    assert parse_definition(reformatted, "b.yaml").content_hash == parse_definition(
        MINI, "a.yaml"
    ).content_hash


def test_content_hash_changes_when_a_state_is_added() -> None:
    grown = MINI.replace(
        "transitions:\n",
        "  - name: dropped\n    final: true\ntransitions:\n"
        "  - {trigger: drop, source: draft, dest: dropped, actor: clerk}\n",
    )
    before = parse_definition(MINI, "a.yaml")
    after = parse_definition(grown, "a.yaml")
    assert len(after.content_hash) == 64
    assert after.content_hash != before.content_hash


def test_canonical_form_is_plain_json_without_lines_or_path() -> None:
    canonical = parse_definition(MINI, "a.yaml").to_canonical()
    text = repr(canonical)
    assert "a.yaml" not in text and "line" not in text
    assert list(canonical) == ["name", "initial", "states", "transitions"]
