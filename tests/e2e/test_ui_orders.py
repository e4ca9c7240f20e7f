"""Order entry in the browser: inline field errors, then save and submit.

(The translation catalog is checked in test_ui_i18n.py.)"""

from __future__ import annotations

import re

from order_flow.bootstrap import App
from order_flow.store.orders import Order
from tests.e2e.ui_support import signed_in, user, web
from tests.integration.order_helpers import count, customer, product, state


def test_an_order_with_a_field_error_shows_it_inline_then_saves_and_submits(app: App) -> None:
    alice = user(app, "alice")
    app.catalog.seed_tax_rates()
    buyer = customer(app, alice)
    goods = product(app, alice)
    b = signed_in(web(app), "alice")
    assert 'name="line-0-qty"' in b.page("/orders/new")
    form = {
        "customer_id": str(buyer.id),
        "priority": "normal",
        "pricing": "exclusive",
        "line-0-product_id": str(goods.id),
        "line-0-qty": "0",
        "idem": "a" * 32,
    }
    bad = b.post("/orders/new", form)
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert re.search(r'id="err-line-0-qty"[^>]*>必须大于 0<', page)
    assert count(app, Order) == 0
    good = b.post("/orders/new", {**form, "line-0-qty": "3"})
    assert good.status_code == 302
    order_id = int(good.headers["Location"].rstrip("/").split("/")[-2])
    edit = b.page(f"/orders/{order_id}/edit")
    version = re.search(r'name="version" value="(\d+)"', edit)
    assert version
    submitted = b.post(
        f"/orders/{order_id}/edit",
        {**form, "line-0-qty": "3", "version": version.group(1), "submit": "1"},
    )
    assert submitted.status_code == 302
    order = app.orders.get(order_id)
    assert state(app, order) == "submitted"
    assert [str(ln.qty.normalize()) for ln in order.lines] == ["3"]
    assert order.number in b.page(f"/orders/{order_id}")


def test_a_clerk_outside_sales_cannot_open_or_enter_orders(app: App) -> None:
    alice = user(app, "alice")
    user(app, "wendy", groups=("warehouse",))
    app.catalog.seed_tax_rates()
    buyer = customer(app, alice)
    goods = product(app, alice)
    order = app.orders.create(
        {"customer_id": buyer.id, "lines": [{"product_id": goods.id, "qty": "1"}]}, alice
    )
    w = signed_in(web(app), "wendy")
    assert w.client.get(f"/orders/{order.id}").status_code == 404
    assert w.client.get("/orders/new").status_code == 403
    assert w.post(f"/orders/{order.id}/submit").status_code == 403
    assert state(app, order) == "draft"
