"""End to end on real workers: orders from submit to invoices issued (and sent)."""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal
from typing import Any

from order_flow.engine.outbox import open_incidents
from tests.e2e.builders import (
    INVOICE_FINAL,
    all_done,
    assert_billed_once,
    assert_numbers_gapless,
    assert_one_mail_per_event,
    invoices,
    pdf_file,
    pdf_text,
    place_orders,
    transitions,
    world,
)
from tests.e2e.conftest import Stack

#: Orders in the end-to-end run (ORDER_FLOW_E2E_ORDERS overrides it for a quick try).
ORDERS = int(os.environ.get("ORDER_FLOW_E2E_ORDERS", "200"))
#: 200 orders take ~50 s on an idle 2-core machine, ~130 s when it is busy.
FLOW_TIMEOUT_S = 240.0


def test_submitted_orders_reach_their_final_state_on_real_workers(
    stack: Stack, smtp_sink: Any
) -> None:
    w = world(stack.app, customers=20)
    stack.start_worker("w1")
    stack.start_worker("w2")
    stack.start_relay()

    ids = place_orders(stack.app, w, ORDERS)

    stack.wait_for(lambda: all_done(stack.app, ids), FLOW_TIMEOUT_S, f"{ORDERS} orders")
    issued = invoices(stack.app, ids)
    assert {i.order_id for i in issued} == set(ids)
    assert_numbers_gapless(stack.app, ids)
    assert_billed_once(stack.app, ids)
    assert transitions(stack.app, "issue") == len(issued)
    assert stack.states("invoice") == {INVOICE_FINAL: len(issued)}
    assert not open_incidents(stack.app)
    expected = len(issued) + len(ids)  # invoice mails + order confirmations
    stack.wait_for(lambda: len(smtp_sink.received) >= expected, 30, "one e-mail per event")
    assert_one_mail_per_event(smtp_sink.received, len(issued), len(ids))
    for inv in issued:
        path = pdf_file(stack.app, inv)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == inv.pdf_sha256
        body = pdf_text(path)
        assert str(inv.number) in body
        assert inv.buyer_name in body
        assert f"{inv.total_gross:,.2f}" in body or f"{inv.total_gross:.2f}" in body
    assert sum((i.total_gross for i in issued), Decimal("0")) > 0
