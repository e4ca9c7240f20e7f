"""engine.batch.start_many_in, the import's way into the workflow: the same rows as
start_in + fire_in one by one, and the engine's own path whenever a move has guards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import SYSTEM, Actor
from order_flow.engine.batch import NewInstance, start_many_in
from order_flow.engine.versions import deploy_files
from order_flow.errors import PermissionDeniedError, TransitionNotAllowedError
from order_flow.store.tables import audit, instances, outbox, tasks

CLERK = Actor("clerk1", "clerk", frozenset({"sales"}))
GUARDED = """\
name: guarded
initial: new
states:
  - name: new
  - name: checked
    task: {title: "check {subject_id}", candidates: [sales], outcomes: {done: finish}}
  - name: done
    final: true
transitions:
  - {trigger: go, source: new, dest: checked, actor: clerk, conditions: [reason_given]}
  - {trigger: finish, source: checked, dest: done, actor: clerk}
"""


def rows(app: App, instance_id: int) -> dict[str, Any]:
    with app.engine.session_factory() as s:
        inst = s.execute(
            select(instances.c.state, instances.c.version, instances.c.priority,
                   instances.c.context).where(instances.c.id == instance_id)
        ).one()  # fmt: skip
        trail = s.execute(
            select(audit.c.kind, audit.c.trigger, audit.c.from_state, audit.c.to_state,
                   audit.c.actor, audit.c.data)
            .where(audit.c.instance_id == instance_id).order_by(audit.c.id)
        ).all()  # fmt: skip
        jobs = s.execute(
            select(outbox.c.step, outbox.c.queue, outbox.c.status, outbox.c.idempotency_key)
            .where(outbox.c.instance_id == instance_id)
        ).all()  # fmt: skip
    key = [(step, queue, status, "ID:" + k.split(":", 1)[1]) for step, queue, status, k in jobs]
    return {"instance": tuple(inst), "audit": [tuple(r) for r in trail], "jobs": key}


def test_a_batch_start_writes_what_start_and_fire_write_one_by_one(app: App) -> None:
    one = app.engine.start("order", "order", "1", CLERK, context={"number": "A"}, priority="urgent")
    app.engine.fire(one.instance_id, "submit", CLERK)
    with app.engine.uow() as uow:
        many = start_many_in(
            app.engine, uow, "order", "order",
            [NewInstance("2", {"number": "A"}, "urgent"), NewInstance("3", {"number": "A"}, "low")],
            CLERK, fire="submit",
        )  # fmt: skip
        uow.commit()
        published = list(uow.jobs)

    assert [(r.from_state, r.to_state, r.version, len(r.job_ids)) for r in many] == [
        ("draft", "submitted", 2, 1),
        ("draft", "submitted", 2, 1),
    ]
    assert rows(app, many[0].instance_id) == rows(app, one.instance_id)
    low = rows(app, many[1].instance_id)
    assert low["instance"][2] == 3 and low["jobs"] == [
        ("order.run_checks", "default", "pending", "ID:2:order.run_checks")
    ]
    assert published == []  # handed to the publisher after the commit, then cleared


def test_a_guarded_move_goes_through_the_engine_one_by_one(app: App, tmp_path: Path) -> None:
    path = tmp_path / "guarded.yaml"
    path.write_text(GUARDED, encoding="utf-8")
    deploy_files(app.engine, [path])
    items = [NewInstance("a"), NewInstance("b")]

    with app.engine.uow() as uow, pytest.raises(TransitionNotAllowedError):
        start_many_in(app.engine, uow, "guarded", "thing", items, CLERK, fire="go")
    with app.engine.uow() as uow, pytest.raises(PermissionDeniedError):
        start_many_in(app.engine, uow, "order", "order", items, SYSTEM, fire="submit")
    with app.engine.uow() as uow:
        started = start_many_in(app.engine, uow, "guarded", "thing", items, CLERK)
        uow.commit()

    assert [(r.to_state, r.version) for r in started] == [("new", 1), ("new", 1)]
    with app.engine.session_factory() as s:
        assert s.scalar(select(tasks.c.id).limit(1)) is None
        assert [r.to_state for r in s.execute(select(audit.c.to_state))] == ["new", "new"]
