"""/healthz and /metrics: no login, real database and broker checks, Prometheus text."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from order_flow.bootstrap import App
from order_flow.engine.outbox import StepDataError, handle_failure
from order_flow.store.tables import outbox, tasks
from tests.e2e.ui_support import on_hold_task, user, web


def scrape(app: App) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = web(app).test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[key] = sample.value
    return out


def test_healthz_says_ok_when_the_database_and_the_embedded_broker_answer(app: App) -> None:
    response = web(app).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": {"ok": True}, "broker": {"ok": True}}


def test_healthz_answers_503_and_names_the_broker_when_it_cannot_be_reached(app: App) -> None:
    app.settings = dataclasses.replace(app.settings, broker_url="redis://127.0.0.1:1/0")
    response = web(app).test_client().get("/healthz")
    assert response.status_code == 503
    body = response.json
    assert body is not None
    assert body["status"] == "unavailable"
    assert body["database"] == {"ok": True}
    assert body["broker"]["ok"] is False
    assert "127.0.0.1" not in response.get_data(as_text=True)  # no connection details


def test_metrics_are_empty_but_valid_on_a_new_system(app: App) -> None:
    metrics = scrape(app)
    assert metrics["order_flow_open_incidents"] == {(): 0.0}
    assert metrics["order_flow_sla_breaches"] == {(): 0.0}
    assert metrics["order_flow_outbox_lag_seconds"] == {(): 0.0}


def test_metrics_report_queue_depth_open_tasks_breaches_incidents_and_step_latency(
    app: App,
) -> None:
    app.catalog.seed_tax_rates()
    boss = user(app, "boss", role="supervisor")
    held = [on_hold_task(app, boss) for _ in range(3)]  # their check jobs ran (done)
    with app.engine.uow() as uow:
        uow.session.execute(
            update(tasks)
            .where(tasks.c.id == held[0])
            .values(due_at=app.engine.clock() - timedelta(minutes=5))
        )
        uow.commit()
    extra = on_hold_task(app, boss)
    with app.engine.session_factory() as s:
        last_check = select(outbox.c.id).where(outbox.c.step == "order.run_checks")
        job = s.scalars(last_check.order_by(outbox.c.id.desc())).first()
    assert job is not None and extra
    with app.engine.uow() as uow:  # one job waiting on the urgent queue, one failed for good
        uow.session.execute(
            update(outbox)
            .where(outbox.c.id == job)
            .values(status="pending", queue="urgent", finished_at=None)
        )
        uow.commit()
    metrics = scrape(app)
    assert metrics["order_flow_queue_depth"][(("queue", "urgent"),)] == 1.0
    assert metrics["order_flow_tasks_open"][(("kind", "human"), ("state", "on_hold"))] == 4.0
    assert metrics["order_flow_sla_breaches"] == {(): 1.0}
    latency = metrics["order_flow_step_latency_seconds_count"]
    assert latency[(("step", "order.run_checks"),)] == 3.0

    with app.engine.uow() as uow:
        uow.session.execute(
            update(outbox).where(outbox.c.id == job).values(status="published", attempts=5)
        )
        uow.commit()
    handle_failure(app, job, StepDataError("bad data"))
    assert scrape(app)["order_flow_open_incidents"] == {(): 1.0}


def test_healthz_and_metrics_need_no_login_while_the_console_does(app: App) -> None:
    client = web(app).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/supervisor/").status_code == 302
