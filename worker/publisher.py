"""Publishing outbox jobs as Celery messages (after the commit)."""

from __future__ import annotations

from celery import current_app

from order_flow.engine.publisher import JobRef


class CeleryPublisher:
    """Sends one ``order_flow.run_step`` message per job, on the job's queue.

    Raises when the broker is unreachable; the rows then stay pending and the
    relay sends them later. A job sent twice is harmless: the runner skips it.
    """

    def publish(self, jobs: list[JobRef]) -> bool:
        for job in jobs:
            current_app.send_task("order_flow.run_step", args=[job.id], queue=job.queue)
        return True
