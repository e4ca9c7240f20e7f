"""Thin Celery tasks: take ids, call the engine, never hold business rules."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, shared_task
from celery.signals import worker_process_init

from order_flow.bootstrap import App, bootstrap
from order_flow.config import Settings
from order_flow.engine.outbox import handle_failure, relay_once
from order_flow.engine.steps import JobOutcome, run_job
from worker.publisher import CeleryPublisher

log = logging.getLogger(__name__)
_app: App | None = None
_lock = threading.Lock()


def get_app(settings: Settings | None = None) -> App:
    """One bootstrapped App per worker process, built on first use (never at import)."""
    global _app
    with _lock:
        if _app is None:
            _app = bootstrap(settings or Settings.from_env(), publisher=CeleryPublisher())
        return _app


@worker_process_init.connect
def _fresh_app_per_child(**_: Any) -> None:
    # A forked child must not reuse the parent's database connections.
    global _app
    if _app is not None:
        _app.db.dispose(close=False)
    _app = None


@shared_task(name="order_flow.run_step", acks_late=True, reject_on_worker_lost=True)
def run_step(job_id: int) -> str:
    app = get_app()
    try:
        return str(run_job(app, job_id))
    except Exception as exc:  # retried by the relay after backoff, or an incident
        outcome = handle_failure(app, job_id, exc)
        log.warning(
            "job %s failed (%s); retry at %s, incident %s",
            job_id,
            exc,
            outcome.retry_at,
            outcome.incident_task_id,
        )
        return "failed"


@shared_task(name="order_flow.relay")
def relay() -> int:
    app = get_app()
    return relay_once(app, app.engine.publisher)


@shared_task(name="order_flow.timers")
def timers() -> int:
    from order_flow.engine.timers import run_timers

    return run_timers(get_app())


@shared_task(name="order_flow.payment_status")
def payment_status() -> int:
    from datetime import date

    return int(get_app().invoices.refresh_payment_status(date.today()))


__all__ = ["Celery", "JobOutcome", "get_app", "payment_status", "relay", "run_step", "timers"]
