"""Bad data: an invoice that cannot be issued goes to the problem queue, not round in
retries; fixing the data and the task's `fix` outcome completes the order."""

from __future__ import annotations

from sqlalchemy import select

from order_flow.engine.outbox import open_incidents
from order_flow.store.invoices import Invoice
from order_flow.store.tables import candidates, tasks
from tests.e2e.builders import (
    TAX_CODE,
    all_done,
    assert_numbers_gapless,
    invoice_states,
    invoices,
    place_orders,
    world,
)
from tests.e2e.conftest import Stack
from tests.integration.helpers import add_user


def test_a_product_without_tax_code_lands_in_the_problem_queue_until_fixed(
    stack: Stack,
) -> None:
    w = world(stack.app, customers=2, products=1, tax_code="")
    finance = add_user(stack.app, "fiona", groups=("finance",))
    stack.start_worker("w1")
    stack.start_relay()
    ids = place_orders(stack.app, w, 3)

    stack.wait_for(
        lambda: (
            set(invoice_states(stack.app, ids).values()) == {"problem"}
            and len(invoice_states(stack.app, ids)) == 3
        ),
        60,
        "the invoices to reach problem",
    )
    with stack.app.engine.session_factory() as s:
        problems = s.execute(
            select(tasks.c.id, tasks.c.title, candidates.c.group_name)
            .join(candidates, candidates.c.task_id == tasks.c.id)
            .join(Invoice, Invoice.instance_id == tasks.c.instance_id)
            .where(tasks.c.state == "problem", tasks.c.status == "open")
        ).all()
    assert len(problems) == 3
    assert {p.group_name for p in problems} == {"finance"}
    assert all("税收分类编码" in p.title for p in problems)
    assert all(i.number is None for i in invoices(stack.app, ids)), "nothing numbered"
    assert not open_incidents(stack.app), "bad data is a problem task, not a retry loop"

    stack.app.catalog.update_product(w.products[0].id, {"tax_code": TAX_CODE}, w.people.alice)
    for p in problems:
        stack.app.tasks.complete(p.id, "fix", finance, comment="税收分类编码已补")

    stack.wait_for(lambda: all_done(stack.app, ids), 60, "the fixed orders")
    assert_numbers_gapless(stack.app, ids)
    assert all(i.problem is None for i in invoices(stack.app, ids))
