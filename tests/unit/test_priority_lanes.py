"""Priority lanes: which queue a job goes to, and the order in which a worker polls them.

The poll order is simulated the way Redis answers kombu's ``BRPOP k1 k2 ...``: the
message comes from the first listed queue that is not empty.
"""

from __future__ import annotations

from collections import Counter, deque
from types import SimpleNamespace

import pytest
from kombu.utils.scheduling import cycle_by_name

from order_flow.config import Settings
from order_flow.engine.core import PRIORITY_RANK, QUEUES, queue_for
from worker.app import create_celery, transport_options
from worker.lanes import URGENT_BURST, UrgentFirstCycle, _serve_urgent_lanes, lanes_for

URGENT, NORMAL = PRIORITY_RANK["urgent"], PRIORITY_RANK["normal"]


def brpop(cycle: UrgentFirstCycle, backlog: dict[str, int], n: int) -> list[str]:
    """``n`` deliveries from queues holding ``backlog[q]`` messages each."""
    lists = {q: deque(range(k)) for q, k in backlog.items()}
    cycle.update(list(backlog))
    served = []
    for _ in range(n):
        keys = cycle.consume(len(cycle.items))
        queue = next((q for q in keys if lists[q]), None)
        if queue is None:
            break
        lists[queue].popleft()
        cycle.rotate(queue)
        served.append(queue)
    return served


def test_an_urgent_instance_s_jobs_go_to_the_urgent_lane_of_their_queue() -> None:
    assert queue_for("order.run_checks", NORMAL) == "default"
    assert queue_for("order.run_checks", URGENT) == "urgent"
    assert queue_for("order.run_checks", PRIORITY_RANK["high"]) == "default"
    assert queue_for("invoice.issue", NORMAL) == "pdf"
    assert queue_for("invoice.issue", URGENT) == "urgent.pdf"
    assert queue_for("invoice.notify", URGENT) == "urgent.email"
    assert queue_for("notify.order", URGENT) == "urgent.email"
    assert queue_for("notify.order", PRIORITY_RANK["low"]) == "email"
    assert QUEUES == ("urgent", "default", "urgent.pdf", "pdf", "urgent.email", "email")


def test_an_urgent_job_is_the_next_delivery_whatever_the_backlog() -> None:
    served = brpop(UrgentFirstCycle(), {"default": 50_000, "urgent": 1}, 1)
    assert served == ["urgent"]
    # ... also on a worker of every queue, with all of them backlogged
    backlog = {q: 100 for q in ("default", "pdf", "email")} | {"urgent.pdf": 1}
    assert brpop(UrgentFirstCycle(), backlog, 1) == ["urgent.pdf"]


def test_while_urgent_jobs_flood_in_one_delivery_in_four_still_serves_the_others() -> None:
    served = brpop(UrgentFirstCycle(), {"default": 1000, "urgent": 1000}, 400)
    assert URGENT_BURST == 3
    assert served[:8] == ["urgent"] * 3 + ["default"] + ["urgent"] * 3 + ["default"]
    assert Counter(served) == {"urgent": 300, "default": 100}
    # the longest wait of a normal job: URGENT_BURST urgent deliveries
    gaps = "".join("u" if q == "urgent" else "d" for q in served).split("d")
    assert max(len(g) for g in gaps) == URGENT_BURST


def test_the_others_take_turns_and_so_do_the_urgent_lanes() -> None:
    served = brpop(UrgentFirstCycle(), {"default": 90, "pdf": 90, "email": 90}, 90)
    assert Counter(served) == {"default": 30, "pdf": 30, "email": 30}
    served = brpop(UrgentFirstCycle(), {"urgent": 50, "urgent.pdf": 50, "default": 50}, 80)
    assert Counter(served) == {"urgent": 30, "urgent.pdf": 30, "default": 20}


def test_no_work_is_left_waiting_when_only_one_side_has_some() -> None:
    assert Counter(brpop(UrgentFirstCycle(), {"urgent": 20, "default": 0}, 30)) == {"urgent": 20}
    assert Counter(brpop(UrgentFirstCycle(), {"urgent": 0, "default": 20}, 30)) == {"default": 20}


def test_the_redis_transport_is_given_the_cycle_and_the_embedded_broker_nothing() -> None:
    redis = Settings.from_env({"ORDER_FLOW_BROKER_URL": "redis://127.0.0.1:6379/0"})
    strategy = transport_options(redis)["queue_order_strategy"]
    assert isinstance(cycle_by_name(strategy)(), UrgentFirstCycle)  # how kombu builds it
    assert transport_options(Settings.from_env({})) == {}


def test_the_burst_is_a_setting_and_must_leave_urgent_jobs_first() -> None:
    env = {"ORDER_FLOW_BROKER_URL": "redis://127.0.0.1:6379/0", "ORDER_FLOW_URGENT_BURST": "1"}
    strategy = transport_options(Settings.from_env(env))["queue_order_strategy"]
    served = brpop(cycle_by_name(strategy)(), {"default": 100, "urgent": 100}, 40)
    assert Counter(served) == {"urgent": 20, "default": 20}  # 1 urgent, then 1 other
    with pytest.raises(ValueError, match="ORDER_FLOW_URGENT_BURST=0: must be at least 1"):
        Settings.from_env({"ORDER_FLOW_URGENT_BURST": "0"})


def test_a_worker_serves_the_urgent_lane_of_every_queue_it_was_started_for() -> None:
    assert lanes_for(["pdf"]) == ["urgent.pdf"]
    assert lanes_for(["urgent", "default", "pdf", "email"]) == ["urgent.pdf", "urgent.email"]
    assert lanes_for(["urgent.email", "email"]) == []
    celery = create_celery(Settings.from_env({"ORDER_FLOW_BROKER_URL": "redis://127.0.0.1/0"}))
    try:
        celery.amqp.queues.select(["default", "email"])  # what `-Q default,email` does
        _serve_urgent_lanes("w1@host", SimpleNamespace(app=celery))
        assert set(celery.amqp.queues.consume_from) == {
            "default",
            "urgent",
            "email",
            "urgent.email",
        }
        # beat's relay and timer scans are on a lane that every orders worker serves
        # first, so a backlog of normal jobs never delays them
        for job in ("relay", "timers"):
            assert celery.conf.beat_schedule[job]["options"] == {"queue": "urgent"}
    finally:
        celery.close()
