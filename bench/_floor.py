"""The floor of the worker benchmarks: bare Celery hops doing bare SQL transitions.

``celery -A _floor worker ...`` (with bench/ on PYTHONPATH; ``_cluster.Cluster.
start_worker(app="_floor")``) runs ``floor.hop`` tasks on the Celery app that
``worker.app.create_celery`` builds from the same settings as the real workers:
same broker and key prefix, ``acks_late``, ``task_reject_on_worker_lost``,
prefetch 1, JSON, task events. A hop does its share of transitions, each one
transaction of bare Core (``UPDATE workflow_instances ... WHERE id AND version`` +
an audit ``INSERT``, as in bench/engine's floor), then sends the hops that follow it.

A *shape* describes an item's hops: a list of ``[queue, transitions, [next hops]]``;
hop 0 is sent by whoever starts the item, and the last transition of the hop
marked by ``done_hop`` writes the state ``done``, which is what a benchmark counts.
"""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_process_init
from sqlalchemy import Engine, create_engine, insert, update

from order_flow.config import Settings
from order_flow.store.tables import audit, instances, rowcount
from order_flow.store.types import utcnow
from worker.app import create_celery

#: An item's hops: [queue, transitions, [indexes of the next hops]].
Shape = list[list[Any]]

app = create_celery(Settings.from_env())
_db: Engine | None = None
_lock = threading.Lock()


def db() -> Engine:
    global _db
    with _lock:
        if _db is None:
            _db = create_engine(app.conf.order_flow_settings.database_url)
        return _db


@worker_process_init.connect
def _fresh_engine(**_: Any) -> None:
    global _db
    if _db is not None:
        _db.dispose(close=False)
    _db = None


def transition(engine: Engine, instance_id: int, version: int, dest: str, trigger: str) -> None:
    """One transaction: the version-checked UPDATE and the audit INSERT."""
    now = utcnow()
    with engine.begin() as conn:
        stmt = update(instances).where(
            instances.c.id == instance_id, instances.c.version == version
        )
        values = dict(state=dest, version=version + 1, updated_at=now, entered_at=now)
        if rowcount(conn.execute(stmt.values(**values))) != 1:
            raise RuntimeError(f"floor: instance {instance_id} changed under us")
        row = dict(instance_id=instance_id, kind="transition", trigger=trigger, actor="system")
        conn.execute(insert(audit), dict(row, from_state="s", to_state=dest, at=now))


def send(instance_id: int, version: int, hop_index: int, shape: Shape, done_hop: int) -> None:
    app.send_task(
        "floor.hop",
        args=[instance_id, version, hop_index, shape, done_hop],
        queue=shape[hop_index][0],
    )


@app.task(name="floor.hop", acks_late=True, reject_on_worker_lost=True)
def hop(instance_id: int, version: int, hop_index: int, shape: Shape, done_hop: int) -> int:
    _queue, count, following = shape[hop_index]
    engine = db()
    for i in range(count):
        last = hop_index == done_hop and i == count - 1
        transition(engine, instance_id, version, "done" if last else f"h{hop_index}", "hop")
        version += 1
    for nxt in following:
        send(instance_id, version, nxt, shape, done_hop)
    return version
