"""A remote control command for the tests: make a worker stop asking Redis for messages.

It reproduces the failure the watchdog (worker/watchdog.py) guards against, kombu
#2492: the Redis transport's ``on_poll_start`` gone from the event loop's tick
callbacks, so no BRPOP is sent again while the worker looks alive (it answers
this very command). Imported by tests/e2e/launch.py into every worker it starts.
"""

from __future__ import annotations

from typing import Any

from celery.worker.control import control_command


@control_command()
def of_test_stop_polling(state: Any) -> dict[str, str]:
    hub = state.consumer.controller.hub
    polls = [
        cb
        for cb in list(hub.on_tick)
        if getattr(cb, "__name__", "") == "on_poll_start"
        and getattr(cb, "__module__", "") == "kombu.transport.redis"  # not the pool's
    ]
    for cb in polls:
        hub.on_tick.discard(cb)
    return {"ok": f"removed {len(polls)} poll callback(s)"}
