"""Run ``celery`` or ``order-flow`` in a subprocess (the tests' single entry point).

The reliability timings the tests shorten are ordinary settings
(``ORDER_FLOW_BROKER_VISIBILITY_TIMEOUT_S``, ``..._BROKER_RESTORE_EVERY_S``,
``..._OUTBOX_REPUBLISH_AFTER_S``), passed in the subprocess environment:

    python -m tests.e2e.launch celery -A worker.celery_app worker -Q ...
    python -m tests.e2e.launch order-flow relay --every 0.5
"""

from __future__ import annotations

import sys

# The timings are settings now; these names map the tests' knobs onto them.
VISIBILITY_TIMEOUT = "ORDER_FLOW_BROKER_VISIBILITY_TIMEOUT_S"
RESTORE_EVERY = "ORDER_FLOW_BROKER_RESTORE_EVERY_S"
REPUBLISH_AFTER = "ORDER_FLOW_OUTBOX_REPUBLISH_AFTER_S"


def main() -> None:
    tool, *args = sys.argv[1:]
    sys.argv = [tool, *args]
    if tool == "celery":
        from celery.__main__ import main as celery_main

        import tests.e2e.stall_control  # noqa: F401  (registers a remote control command)

        celery_main()
    elif tool == "order-flow":
        from order_flow.cli import main as cli_main

        cli_main()
    else:
        raise SystemExit(f"unknown tool {tool!r}")


if __name__ == "__main__":
    main()
