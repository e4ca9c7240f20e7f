"""The Celery application, built from order_flow's settings through the bootstrap.

Routing (see docs/operations.md): order steps go to ``default``; invoice issuing
(numbering + PDF) to ``pdf``; notifications to ``email``. The jobs of an urgent
instance go to the urgent lane of their queue (``urgent``, ``urgent.pdf``,
``urgent.email``), which every worker serves first (worker/lanes.py). Start workers
per queue, e.g. ``celery -A worker.celery_app worker -Q default`` (it serves
``urgent`` too).
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

from order_flow.config import Settings
from order_flow.engine.core import QUEUES, URGENT_QUEUE
from worker.lanes import cycle_for
from worker.watchdog import ConsumerWatchdog

#: How often beat runs the relay and the timer scan.
RELAY_EVERY_S = 5.0
TIMERS_EVERY_S = 60.0


def transport_options(settings: Settings) -> dict[str, object]:
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return {}  # kombu's SQLAlchemy transport passes these to create_engine(): TypeError
    options: dict[str, object] = {
        "visibility_timeout": settings.broker_visibility_timeout_s,
        # The order of BRPOP's keys: urgent lanes first, the others a share (lanes.py).
        "queue_order_strategy": cycle_for(settings.urgent_burst),
    }
    if settings.broker_restore_every_s:
        # kombu sweeps unacknowledged messages every interval x throttle seconds.
        options.update(
            unacked_restore_interval=settings.broker_restore_every_s, unacked_restore_throttle=1
        )
    if settings.broker_key_prefix:
        options["global_keyprefix"] = settings.broker_key_prefix
    return options


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    if settings.broker_url.startswith("sqla+sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("order_flow", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        # Reliability (DESIGN invariant 5): ack after the step, requeue if the
        # worker dies mid-step, take one message at a time.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_queues=[Queue(q) for q in QUEUES],
        task_default_queue="default",
        task_serializer="json",
        accept_content=["json"],
        # Events, so Flower and `celery events` can watch the workers.
        worker_send_task_events=True,
        task_send_sent_event=True,
        timezone=settings.timezone,
        beat_schedule={
            "relay": {  # urgent: it publishes the urgent retries, never behind a backlog
                "task": "order_flow.relay",
                "schedule": RELAY_EVERY_S,
                "options": {"queue": URGENT_QUEUE},
            },
            "timers": {  # urgent too: deadlines and SLA rungs fire on time at peak
                "task": "order_flow.timers",
                "schedule": TIMERS_EVERY_S,
                "options": {"queue": URGENT_QUEUE},
            },
            "payment-status": {
                "task": "order_flow.payment_status",
                "schedule": crontab(hour=1, minute=5),
                "options": {"queue": "default"},
            },
        },
    )
    app.conf.order_flow_settings = settings
    app.steps["consumer"].add(ConsumerWatchdog)
    return app
