"""Run ``celery`` or ``order-flow`` in a subprocess with test-only timings.

Three reliability timings are module constants that no setting reaches:
``worker.app.VISIBILITY_TIMEOUT_S`` (1 h), kombu's restore sweep of unacked
messages (every ~100 s) and ``order_flow.engine.outbox.REPUBLISH_AFTER``
(10 min). A test that waits for them must shorten them; this launcher does so
from ``ORDER_FLOW_TEST_*`` variables, then runs the real command line:

    python -m tests.e2e.launch celery -A worker.celery_app worker -Q ...
    python -m tests.e2e.launch order-flow relay --every 0.5
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

VISIBILITY_TIMEOUT = "ORDER_FLOW_TEST_VISIBILITY_TIMEOUT"
RESTORE_EVERY = "ORDER_FLOW_TEST_RESTORE_EVERY"
REPUBLISH_AFTER = "ORDER_FLOW_TEST_REPUBLISH_AFTER"


def apply_overrides() -> None:
    import worker.app as worker_app
    from order_flow.engine import outbox

    if os.environ.get(VISIBILITY_TIMEOUT):
        worker_app.VISIBILITY_TIMEOUT_S = int(os.environ[VISIBILITY_TIMEOUT])
    if os.environ.get(RESTORE_EVERY):
        every = int(os.environ[RESTORE_EVERY])
        original = worker_app.transport_options

        def transport_options(settings: object) -> dict[str, object]:
            options = original(settings)  # type: ignore[arg-type]
            # kombu sweeps unacked messages every interval x throttle seconds.
            options.update(unacked_restore_interval=every, unacked_restore_throttle=1)
            return options

        worker_app.transport_options = transport_options
    if os.environ.get(REPUBLISH_AFTER):
        outbox.REPUBLISH_AFTER = timedelta(seconds=float(os.environ[REPUBLISH_AFTER]))


def main() -> None:
    apply_overrides()
    tool, *args = sys.argv[1:]
    sys.argv = [tool, *args]
    if tool == "celery":
        from celery.__main__ import main as celery_main

        celery_main()
    elif tool == "order-flow":
        from order_flow.cli import main as cli_main

        cli_main()
    else:
        raise SystemExit(f"unknown tool {tool!r}")


if __name__ == "__main__":
    main()
