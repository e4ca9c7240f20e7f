"""Operator endpoints: ``/healthz`` and the Prometheus ``/metrics``.

Neither asks for a login, so a load balancer and Prometheus can reach them; expose them
only on the internal network (see docs/operations.md). They reveal counts and timings,
never names, amounts or connection strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from order_flow.bootstrap import App
from order_flow.engine.outbox import outbox_status
from order_flow.store.tables import outbox, tasks
from web import of_app

bp = Blueprint("ops", __name__)

#: Seconds the broker check may take before /healthz calls the broker unreachable.
BROKER_TIMEOUT_S = 2.0
#: Step latency is measured over jobs finished in this window.
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
#: At most this many finished jobs feed one scrape's latency histogram.
LATENCY_SAMPLE = 20_000


def check_database(app: App) -> str | None:
    """None when ``SELECT 1`` works, else the error's type (no connection details)."""
    try:
        with app.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return type(exc).__name__


def check_broker(app: App, timeout: float = BROKER_TIMEOUT_S) -> str | None:
    from kombu import Connection

    try:
        with Connection(app.settings.broker_url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return type(exc).__name__


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    app = of_app()
    checks = {"database": check_database(app), "broker": check_broker(app)}
    ok = all(v is None for v in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        **{
            name: {"ok": err is None, **({"error": err} if err else {})}
            for name, err in checks.items()
        },
    }
    return jsonify(body), 200 if ok else 503


class StateCollector(Collector):
    """Reads everything from the database at scrape time; holds no state between scrapes."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app = self.app
        now: datetime = app.engine.clock()
        with app.engine.session_factory() as s:
            depth = s.execute(
                select(outbox.c.queue, func.count())
                .where(outbox.c.status.in_(("pending", "published")))
                .group_by(outbox.c.queue)
            ).all()
            open_tasks = s.execute(
                select(tasks.c.kind, tasks.c.state, func.count())
                .where(tasks.c.status == "open")
                .group_by(tasks.c.kind, tasks.c.state)
            ).all()
            breaches = s.scalar(
                select(func.count())
                .select_from(tasks)
                .where(tasks.c.status == "open", tasks.c.kind == "human", tasks.c.due_at < now)
            )
            finished = s.execute(
                select(outbox.c.step, outbox.c.created_at, outbox.c.finished_at)
                .where(outbox.c.status == "done", outbox.c.finished_at >= now - LATENCY_WINDOW)
                .order_by(outbox.c.finished_at.desc())
                .limit(LATENCY_SAMPLE)
            ).all()
        status = outbox_status(app)

        g = GaugeMetricFamily(
            "order_flow_queue_depth",
            "Outbox jobs not yet finished (pending or published)",
            labels=["queue"],
        )
        for queue, n in depth:
            g.add_metric([queue], n)
        yield g

        g = GaugeMetricFamily("order_flow_outbox_jobs", "Outbox jobs per status", labels=["status"])
        for name, n in sorted(status["counts"].items()):
            g.add_metric([name], n)
        yield g

        yield GaugeMetricFamily(
            "order_flow_outbox_lag_seconds",
            "How long the oldest due pending job has waited",
            value=status["lag_seconds"],
        )
        incidents = sum(n for kind, _, n in open_tasks if kind == "incident")
        yield GaugeMetricFamily("order_flow_open_incidents", "Open incident tasks", value=incidents)
        yield GaugeMetricFamily(
            "order_flow_sla_breaches", "Open human tasks past their SLA", value=breaches or 0
        )
        g = GaugeMetricFamily(
            "order_flow_tasks_open", "Open tasks per kind and state", labels=["kind", "state"]
        )
        for kind, state, n in open_tasks:
            g.add_metric([kind, state], n)
        yield g
        yield _latency(finished)


def _latency(rows: Sequence[Any]) -> HistogramMetricFamily:
    """Created -> finished time of each job done within the window, per step."""
    per_step: dict[str, list[float]] = defaultdict(list)
    for step, created, finished in rows:
        per_step[step].append(max(0.0, (finished - created).total_seconds()))
    h = HistogramMetricFamily(
        "order_flow_step_latency_seconds",
        f"Outbox job latency (created to finished), jobs finished in the last {LATENCY_WINDOW}",
        labels=["step"],
    )
    for step, values in sorted(per_step.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", len(values)))
        h.add_metric([step], buckets, sum_value=sum(values))
    return h


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(of_app()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4; charset=utf-8")
