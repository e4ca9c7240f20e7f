"""The consumer watchdog: a worker that stops taking messages while they wait reconnects.

kombu's Redis transport has had bugs in which a worker, after the broker restarted,
reconnects and answers pings but never asks Redis for the next message again
(celery #8030, kombu #2492 and #2629): the messages wait in Redis until someone
restarts the worker. kombu 5.7 fixed the causes known upstream, and our own
Redis-restart test still saw a worker stall once in about 25 loaded runs. This guard
does not depend on knowing the cause.

Every ``worker_stall_check_s`` seconds it compares what the worker could take with
what it took. Messages waiting in the worker's queues, a pool process free (and
the channel's prefetch window open: after a reconnect it stays shut until the
running steps end), and nothing received since the last look: that is a strike.
After :data:`STRIKES` strikes in a row it logs an ERROR and raises a connection
error in the event loop, which is celery's own path for a lost broker: the
consumer closes the connection, reconnects and consumes again. A healthy worker
with a free process and an open window takes a waiting message within a second
(kombu's BRPOP timeout), so the guard does not fire on one; a false alarm would
cost one reconnect, and the messages of running steps come back to the queue,
which the job runner already treats as a redelivery. (Messages of revoked or
unknown tasks are taken without a ``task_received`` signal; order_flow revokes none,
and a queue full of them would only cost such reconnects.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from celery import bootsteps
from celery.signals import task_received
from celery.worker import state as worker_state
from kombu.transport.redis import PRIORITY_STEPS, Channel

from order_flow.config import Settings

log = logging.getLogger(__name__)

#: Looks in a row that find the worker idle with messages waiting before it reconnects.
STRIKES = 2

_received = [0]


@task_received.connect
def _count_received(**_: Any) -> None:
    _received[0] += 1


@dataclass
class Watch:
    """The decision, apart from Celery and Redis: is the consumer stalled?"""

    strikes_needed: int = STRIKES
    last_received: int | None = None
    strikes: int = 0

    def look(self, waiting: int, free: bool, received: int) -> bool:
        """One look: ``waiting`` messages in the worker's queues, ``free`` a pool process
        free, ``received`` messages so far. True: stalled, reconnect now."""
        idle = self.last_received is not None and received == self.last_received
        self.last_received = received
        self.strikes = self.strikes + 1 if waiting > 0 and free and idle else 0
        if self.strikes >= self.strikes_needed:
            self.strikes = 0
            return True
        return False


def queue_keys(queues: Iterable[str], prefix: str = "") -> list[str]:
    """The Redis lists that hold the messages of ``queues``, every priority step."""
    keys = []
    for queue in queues:
        for step in PRIORITY_STEPS:  # kombu's naming: ``queue``, ``queue\x06\x163``...
            name = queue if step == 0 else f"{queue}{Channel.sep}{step}"
            keys.append(prefix + name)
    return keys


class ConsumerStalled(redis.exceptions.ConnectionError):
    """Raised in the event loop: celery treats it as a lost broker connection."""


class ConsumerWatchdog(bootsteps.StartStopStep):
    """A consumer step: looks every ``worker_stall_check_s`` seconds (0: off; Redis only)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        # An app not made by worker.app.create_celery has no settings: no watchdog.
        settings: Settings | None = getattr(parent.app.conf, "order_flow_settings", None)
        url = settings.broker_url if settings else ""
        redis_broker = url.startswith(("redis://", "rediss://"))
        self.every = settings.worker_stall_check_s if settings and redis_broker else 0
        self.url, self.prefix = url, settings.broker_key_prefix if settings else ""
        self.client: redis.Redis | None = None
        self.watch = Watch()
        self.tref: Any = None

    def register_with_event_loop(self, parent: Any, hub: Any) -> None:
        """Called at every (re)connection; celery cancels the timer when the loop ends
        on an error, and :meth:`stop` when the worker shuts down."""
        if self.every > 0:
            self._cancel()
            self.watch = Watch()
            self.tref = hub.call_repeatedly(self.every, self.check, parent)

    def stop(self, parent: Any) -> None:
        self._cancel()

    def shutdown(self, parent: Any) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def check(self, parent: Any) -> None:
        consumer = getattr(parent, "task_consumer", None)
        if parent.blueprint.state != bootsteps.RUN or consumer is None or not parent.connection:
            return  # shutting down (the pool drains, nothing is taken) or reconnecting
        queues = sorted(q.name for q in consumer.queues)
        waiting = self._waiting(parent, queues)
        if waiting is None:
            return  # Redis is unreachable: kombu's own reconnection deals with that
        limit = getattr(parent.pool, "limit", None) or parent.app.conf.worker_concurrency or 1
        free = len(worker_state.reserved_requests) < limit and consumer.channel.qos.can_consume()
        if self.watch.look(waiting, free, _received[0]):
            log.error(
                "worker stopped consuming: %d message(s) wait in %s with a pool process "
                "free and none was received for %d s; reconnecting to the broker",
                waiting, ", ".join(queues), self.every * STRIKES,
            )  # fmt: skip
            raise ConsumerStalled("the consumer stopped taking messages; reconnecting")

    def _waiting(self, parent: Any, queues: list[str]) -> int | None:
        """Messages in the Redis lists of ``queues``; None when Redis does not answer."""
        try:
            if self.client is None:  # the broker the worker uses (``celery -b`` too)
                url = parent.app.conf.broker_url or self.url
                self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            with self.client.pipeline(transaction=False) as pipe:
                for key in queue_keys(queues, self.prefix):
                    pipe.llen(key)
                return sum(int(n) for n in pipe.execute())
        except (redis.exceptions.RedisError, ValueError):
            return None
