"""A worker that stops asking Redis for messages while they wait reconnects by itself.

The stall is made on purpose (tests/e2e/stall_control.py removes the transport's poll
callback, kombu #2492); the first test shows that it does stall a worker without the
watchdog, the second that the watchdog (worker/watchdog.py) brings it back.
"""

from __future__ import annotations

import time

from tests.e2e.builders import all_done, order_states, place_orders, world
from tests.e2e.conftest import Proc, Stack

FLOW_TIMEOUT_S = 90.0


def _stall(stack: Stack, worker: Proc) -> None:
    replies = stack.celery.control.broadcast("of_test_stop_polling", reply=True, timeout=10)
    assert any("removed 1 poll callback" in str(r) for r in replies), replies
    assert worker.alive()


def _start(stack: Stack, check_s: int) -> tuple[Proc, list[int]]:
    """A worker with the watchdog looking every ``check_s`` s (0: off), proven healthy
    by a first batch of orders."""
    w = world(stack.app)
    worker = stack.start_worker(
        "w1", concurrency=1, overrides={"ORDER_FLOW_WORKER_STALL_CHECK_S": str(check_s)}
    )
    stack.start_relay()
    first = place_orders(stack.app, w, 3)
    stack.wait_for(lambda: all_done(stack.app, first), FLOW_TIMEOUT_S, "the first orders")
    _stall(stack, worker)
    time.sleep(1.5)  # the BRPOP pending at the stall times out (1 s); none follows
    return worker, place_orders(stack.app, w, 4, priority="normal")


def test_without_the_watchdog_a_stalled_worker_leaves_the_orders_waiting(stack: Stack) -> None:
    worker, later = _start(stack, check_s=0)
    time.sleep(8)  # many BRPOP timeouts (1 s): a polling worker would have taken them
    assert set(order_states(stack.app, later).values()) == {"submitted"}
    assert worker.alive() and "stopped consuming" not in worker.output()


def test_the_watchdog_reconnects_a_stalled_worker_and_the_orders_finish(stack: Stack) -> None:
    worker, later = _start(stack, check_s=1)
    stack.wait_for(lambda: all_done(stack.app, later), FLOW_TIMEOUT_S, "the orders after the stall")
    assert "worker stopped consuming" in worker.output()
    assert worker.alive()
