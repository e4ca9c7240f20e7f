"""The broker goes away (stopped, or flushed): the outbox and the relay lose nothing.

These tests run their own ``redis-server`` on a free port, so stopping or
flushing it never touches the shared Redis.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from order_flow.store.tables import outbox
from tests.e2e.builders import all_done, assert_numbers_gapless, place_orders, world
from tests.e2e.conftest import RedisServer, Stack, StackFactory

#: Everything in flight when Redis restarts empty is lost; the relay re-publishes it
#: after this many seconds (REPUBLISH_AFTER, 10 min in production).
REPUBLISH_AFTER_S = 8.0
FLOW_TIMEOUT_S = 120.0


def _pending(stack: Stack) -> int:
    with stack.app.engine.session_factory() as s:
        return int(s.scalar(select(func.count()).where(outbox.c.status == "pending")) or 0)


def _in_flight(stack: Stack) -> int:
    """Jobs published and not finished."""
    with stack.app.engine.session_factory() as s:
        return int(s.scalar(select(func.count()).where(outbox.c.status == "published")) or 0)


def test_orders_submitted_while_redis_is_down_complete_once_it_is_back(
    private_redis: RedisServer,
    pg_database: str,
    make_stack: StackFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = make_stack(pg_database, private_redis.url, "of-down:")
    w = world(stack.app)
    stack.start_worker("w1")
    stack.start_relay(republish_after_s=REPUBLISH_AFTER_S)
    before = place_orders(stack.app, w, 10)

    private_redis.stop()
    with caplog.at_level(logging.ERROR, logger="order_flow.engine.uow"):
        during = place_orders(stack.app, w, 10)  # each commit succeeds; its publish fails
    assert sum("the relay will retry" in r.getMessage() for r in caplog.records) >= 10
    assert _pending(stack) >= 10
    assert set(stack.states("order")) <= {"submitted", "approved"}

    private_redis.start()
    ids = before + during
    stack.wait_for(lambda: all_done(stack.app, ids), FLOW_TIMEOUT_S, "every order")
    assert_numbers_gapless(stack.app, ids)
    assert all(p.alive() for p in stack.procs), "worker and relay rode out the outage"


def test_a_flushall_mid_run_is_survived(
    private_redis: RedisServer, pg_database: str, make_stack: StackFactory
) -> None:
    stack = make_stack(pg_database, private_redis.url, "of-flush:")
    w = world(stack.app)
    stack.start_worker("w1", concurrency=1)
    stack.start_relay(republish_after_s=REPUBLISH_AFTER_S)

    ids = place_orders(stack.app, w, 30)
    stack.wait_for(lambda: _in_flight(stack) >= 5, 30, "jobs waiting in Redis")
    client: Any = redis.Redis.from_url(private_redis.url)
    try:
        client.flushall()  # the queued messages are gone; the outbox still has the jobs
    finally:
        client.close()
    more = place_orders(stack.app, w, 10)

    stack.wait_for(lambda: all_done(stack.app, ids + more), FLOW_TIMEOUT_S, "every order")
    assert_numbers_gapless(stack.app, ids + more)
