"""Deploying changed definitions, version pinning, and migrating instances."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.engine.versions import deploy_files, diff_versions, migrate
from order_flow.errors import DefinitionError, MigrationError
from order_flow.store.tables import audit
from tests.conftest import WORKFLOWS
from tests.integration.helpers import add_user, snapshot, state_of

OPERATOR = Actor("ops", "admin")


def changed_order_file(tmp_path: Path) -> Path:
    """order.yaml with a new `draft_checked` state between draft and submitted."""
    text = (WORKFLOWS / "order.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  - name: submitted\n",
        "  - name: draft_checked\n    label: {zh: 已初审, en: Pre-checked}\n  - name: submitted\n",
        1,
    )
    text = text.replace(
        "  - {trigger: submit, source: draft, dest: submitted, actor: clerk}\n",
        "  - {trigger: precheck, source: draft, dest: draft_checked, actor: clerk}\n"
        "  - {trigger: submit, source: draft_checked, dest: submitted, actor: clerk}\n"
        "  - {trigger: cancel, source: draft_checked, dest: cancelled, actor: clerk}\n",
        1,
    )
    path = tmp_path / "order.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_deploying_an_unchanged_definition_does_nothing(app: App) -> None:
    results = deploy_files(app.engine, [WORKFLOWS])
    assert {(r.name, r.version, r.created) for r in results} == {
        ("order", 1, False),
        ("invoice", 1, False),
    }


def test_running_instances_stay_on_their_version_after_a_deploy(app: App, tmp_path: Path) -> None:
    clerk = add_user(app, "alice")
    old = app.engine.start("order", "order", "1", clerk).instance_id
    [result] = deploy_files(app.engine, [changed_order_file(tmp_path)])
    assert (result.version, result.created) == (2, True)
    new = app.engine.start("order", "order", "2", clerk).instance_id
    app.engine.fire(old, "submit", clerk)  # v1 still allows submit from draft
    assert state_of(app, old)[0] == "submitted"
    app.engine.fire(new, "precheck", clerk)  # only v2 knows precheck
    assert state_of(app, new)[0] == "draft_checked"


def test_diff_lists_added_and_removed_states_and_transitions(app: App, tmp_path: Path) -> None:
    deploy_files(app.engine, [changed_order_file(tmp_path)])
    d = diff_versions(app.engine, "order", 1, 2)
    assert d.added_states == ("draft_checked",)
    assert ("submit", "draft", "submitted") in d.removed_transitions
    assert ("precheck", "draft", "draft_checked") in d.added_transitions


def test_a_dry_run_migration_reports_the_plan_and_changes_nothing(app: App, tmp_path: Path) -> None:
    clerk = add_user(app, "alice")
    a = app.engine.start("order", "order", "1", clerk).instance_id
    deploy_files(app.engine, [changed_order_file(tmp_path)])
    with app.engine.session_factory() as s:
        before = snapshot(s)
    plan = migrate(app.engine, "order", 1, 2, OPERATOR, {"draft": "draft_checked"}, dry_run=True)
    assert plan.moves == [(a, "draft", "draft_checked")] and not plan.applied
    with app.engine.session_factory() as s:
        assert snapshot(s) == before


def test_a_migration_moves_instances_with_an_audit_event_each(app: App, tmp_path: Path) -> None:
    clerk = add_user(app, "alice")
    a = app.engine.start("order", "order", "1", clerk).instance_id
    deploy_files(app.engine, [changed_order_file(tmp_path)])
    plan = migrate(app.engine, "order", 1, 2, OPERATOR, {"draft": "draft_checked"})
    assert plan.applied
    assert state_of(app, a) == ("draft_checked", 2)
    app.engine.fire(a, "submit", clerk)  # the instance now follows v2
    with app.engine.session_factory() as s:
        kinds = list(s.scalars(select(audit.c.kind).where(audit.c.instance_id == a)))
    assert kinds == ["start", "migrate", "transition"]


def test_a_migration_that_cannot_place_an_instance_moves_nothing(app: App, tmp_path: Path) -> None:
    clerk = add_user(app, "alice")
    app.engine.start("order", "order", "1", clerk)
    text = (WORKFLOWS / "order.yaml").read_text(encoding="utf-8")
    text = text.replace("name: draft\n", "name: drafting\n").replace(
        "initial: draft\n", "initial: drafting\n"
    )
    text = text.replace("source: draft,", "source: drafting,")
    path = tmp_path / "order.yaml"
    path.write_text(text, encoding="utf-8")
    deploy_files(app.engine, [path])
    with app.engine.session_factory() as s:
        before = snapshot(s)
    plan = migrate(app.engine, "order", 1, 2, OPERATOR)
    assert not plan.applied and plan.blocked and "drafting" not in plan.blocked[0][2]
    with app.engine.session_factory() as s:
        assert snapshot(s) == before
    with pytest.raises(MigrationError, match="nope"):
        migrate(app.engine, "order", 1, 2, OPERATOR, {"nope": "drafting"})


def test_an_invalid_file_deploys_nothing(app: App, tmp_path: Path) -> None:
    good = changed_order_file(tmp_path)
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\ninitial: nowhere\nstates:\n  - name: a\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        deploy_files(app.engine, [good, bad])
    assert any(p.path.endswith("broken.yaml") for p in info.value.problems)
    with app.engine.session_factory() as s:
        assert len(app.engine.definitions.versions(s, "order")) == 1
