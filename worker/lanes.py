"""Priority lanes on the workers: urgent lanes first, the other queues a guaranteed share.

The engine sends an urgent instance's jobs to the urgent lane of their queue
(``engine.core.URGENT_LANES``: ``default`` -> ``urgent``, ``pdf`` -> ``urgent.pdf``,
``email`` -> ``urgent.email``). Two pieces here make the workers honour that:

* every worker serves the urgent lane of each queue it was started for
  (``-Q pdf`` also consumes ``urgent.pdf``), so no command line can forget a lane;
* on Redis, the order in which a worker polls its queues (kombu's
  ``queue_order_strategy``) is :class:`UrgentFirstCycle`: the urgent lanes first,
  up to :data:`URGENT_BURST` deliveries in a row, then one from the other queues.

kombu's Redis transport sends one ``BRPOP urgent ... default ...`` per free pool
process and Redis answers from the first non-empty list, so the order of the
keys decides. Its stock strategies are ``round_robin`` (the queue just served
goes last: an urgent job waits behind one job of every other non-empty queue)
and ``priority`` (a fixed order: the first queue starves the others while it has
work). With this cycle a waiting urgent job is taken by the next free process,
and while urgent jobs keep coming, at least one delivery in ``URGENT_BURST + 1``
still goes to the other queues.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery.signals import celeryd_after_setup
from kombu.utils.scheduling import round_robin_cycle

from order_flow.engine.core import URGENT_LANES

#: Deliveries in a row a worker takes from the urgent lanes while the others wait;
#: the others keep at least 1 / (URGENT_BURST + 1) of the deliveries (here 1 in 4).
#: The default of ``ORDER_FLOW_URGENT_BURST`` (:func:`cycle_for`).
URGENT_BURST = 3
_URGENT = frozenset(URGENT_LANES.values())


def is_urgent_lane(queue: str) -> bool:
    return queue in _URGENT


class UrgentFirstCycle(round_robin_cycle):
    """kombu queue order: urgent lanes first, the rest after ``burst`` urgent in a row.

    Within each group the queues take turns (round robin), as kombu's default does.
    kombu calls ``consume(n)`` for the keys of the next BRPOP and ``rotate(queue)``
    with the queue a message came from.
    """

    burst = URGENT_BURST

    def __init__(self, it: Iterable[str] | None = None) -> None:
        super().__init__(list(it) if it is not None else None)
        self.streak = 0  # urgent deliveries since the last one from another queue

    def consume(self, n: int) -> list[str]:
        items = self.items[:n]
        urgent = [q for q in items if is_urgent_lane(q)]
        others = [q for q in items if not is_urgent_lane(q)]
        return urgent + others if self.streak < self.burst else others + urgent

    def rotate(self, last_used: str) -> str:
        self.streak = self.streak + 1 if is_urgent_lane(last_used) else 0
        super().rotate(last_used)
        return last_used


def cycle_for(burst: int) -> type[UrgentFirstCycle]:
    """The cycle class with ``burst`` urgent deliveries in a row (kombu instantiates it)."""
    if burst == UrgentFirstCycle.burst:
        return UrgentFirstCycle
    return type("UrgentFirstCycle", (UrgentFirstCycle,), {"burst": burst})


def lanes_for(queues: Iterable[str]) -> list[str]:
    """The urgent lanes a worker started for ``queues`` must serve too, in addition."""
    chosen = set(queues)
    return [lane for base, lane in URGENT_LANES.items() if base in chosen and lane not in chosen]


@celeryd_after_setup.connect
def _serve_urgent_lanes(sender: str, instance: Any, **_: Any) -> None:
    """After ``-Q`` was applied: add the urgent lane of every queue the worker serves."""
    queues = instance.app.amqp.queues
    serving = queues.consume_from if queues.consume_from is not None else queues
    for lane in lanes_for(serving):
        queues.select_add(lane)
