"""The embedded default: SQLite and the kombu SQLAlchemy broker, no server at all."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.builders import (
    all_done,
    assert_billed_once,
    assert_numbers_gapless,
    place_orders,
    world,
)
from tests.e2e.conftest import StackFactory

ORDERS = 10


def test_the_embedded_default_runs_the_flow_on_real_workers(make_stack: StackFactory) -> None:
    stack = make_stack()  # no database or broker URL: the defaults in the data folder
    assert stack.settings.database_url.startswith("sqlite:///")
    assert stack.settings.broker_url.startswith("sqla+sqlite:///")
    w = world(stack.app, customers=3)
    stack.start_worker("w1")
    stack.start_relay()

    ids = place_orders(stack.app, w, ORDERS)

    stack.wait_for(lambda: all_done(stack.app, ids), 120, f"{ORDERS} orders")
    assert_numbers_gapless(stack.app, ids)
    assert_billed_once(stack.app, ids)
    assert Path(stack.settings.broker_url.removeprefix("sqla+sqlite:///")).exists()
