"""POST /api/v1/orders/batch: per order, idempotent on the customer PO and on the
Idempotency-Key, documented in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.store.orders import Order
from order_flow.store.tables import instances
from tests.e2e.api_support import Api, make_api, row_counts, seed_customer, seed_product


@pytest.fixture
def api(app: App) -> Api:
    return make_api(app)


def _shop(app: App, api: Api) -> tuple[int, int, int]:
    boss = api.actors["boss"]
    return seed_customer(app, boss), seed_product(app, boss, "100"), seed_product(app, boss, "8")


def _order(customer_id: int, po: str, *lines: tuple[int, Any], **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "customer_po": po,
        "lines": [{"product_id": p, "qty": q} for p, q in lines],
        **extra,
    }


def _states(app: App) -> dict[str, tuple[str, str]]:
    with app.engine.session_factory() as s:
        rows = s.execute(
            select(Order.customer_po, Order.created_by, instances.c.state).join(
                instances, instances.c.id == Order.instance_id
            )
        ).all()
    return {po: (who, state) for po, who, state in rows}


def test_a_batch_creates_and_submits_every_good_order_and_names_each_bad_field(
    app: App, api: Api
) -> None:
    customer, a, b = _shop(app, api)
    batch = {
        "orders": [
            _order(customer, "PO-1", (a, "2"), (b, "1.5"), priority="urgent"),
            _order(customer, "PO-2", (a, "0")),
            _order(customer, "PO-3", (999999, "1")),
            _order(customer, "PO-4", (b, "3"), promised_date="2020-01-01"),
            _order(customer, "PO-5", (b, "1")),
        ]
    }

    response = api.post("/orders/batch", batch)

    assert response.status_code == 422
    body = response.get_json()
    assert (body["created"], body["already_imported"], body["rejected"]) == (2, 0, 3)
    assert [(i["customer_po"], i["status"]) for i in body["items"]] == [
        ("PO-1", "created"), ("PO-2", "rejected"), ("PO-3", "rejected"),
        ("PO-4", "rejected"), ("PO-5", "created"),
    ]  # fmt: skip
    assert body["errors"] == [
        {"field": "orders[1].lines[0].qty", "message": "must be greater than 0"},
        {"field": "orders[2].lines[0].product_id", "message": "no such product"},
        {"field": "orders[3].promised_date", "message": "must not be in the past"},
    ]
    assert _states(app) == {"PO-1": ("alice", "submitted"), "PO-5": ("alice", "submitted")}
    first = api.get(f"/orders/{body['items'][0]['order_id']}").get_json()
    assert (first["total_net"], first["total_gross"], first["priority"]) == (
        "212.00",
        "239.56",
        "urgent",
    )


def test_sending_the_same_batch_again_creates_nothing_new(app: App, api: Api) -> None:
    customer, a, b = _shop(app, api)
    batch = {"orders": [_order(customer, "PO-1", (a, "1")), _order(customer, "PO-2", (b, "2"))]}
    first = api.post("/orders/batch", batch)
    counts = row_counts(app)

    again = api.post("/orders/batch", batch, as_="bob")

    assert first.status_code == 201 and first.get_json()["created"] == 2
    assert again.status_code == 200
    body = again.get_json()
    assert (body["created"], body["already_imported"]) == (0, 2)
    assert [i["order_id"] for i in body["items"]] == [
        i["order_id"] for i in first.get_json()["items"]
    ]
    counts_after = row_counts(app)
    assert counts_after.pop("import_batches") == counts.pop("import_batches") + 1
    assert counts_after == counts


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    app: App, api: Api
) -> None:
    customer, a, _b = _shop(app, api)
    batch = {"orders": [_order(customer, "PO-1", (a, "1")), _order(customer, "PO-2", (a, "0"))]}
    key = {"Idempotency-Key": "batch-2026-0001"}
    first = api.post("/orders/batch", batch, headers=key)
    counts = row_counts(app)

    replay = api.post("/orders/batch", batch, headers=key)
    other = api.post("/orders/batch", {"orders": batch["orders"][:1]}, headers=key)

    assert first.status_code == 422 and replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert other.status_code == 409
    assert row_counts(app) == counts


def test_a_batch_refuses_a_repeated_po_a_float_and_a_missing_po(app: App, api: Api) -> None:
    customer, a, _b = _shop(app, api)
    twice = {"orders": [_order(customer, "PO-1", (a, "1")), _order(customer, "PO-1", (a, "2"))]}
    response = api.post("/orders/batch", twice)
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "orders[1].customer_po", "message": "the same customer and PO as orders[0]"}
    ]
    counts = row_counts(app)

    floats = api.post("/orders/batch", {"orders": [_order(customer, "PO-9", (a, 1.5))]})
    unnumbered = {"customer_id": customer, "lines": [{"product_id": a, "qty": "1"}]}
    no_po = api.post("/orders/batch", {"orders": [unnumbered]})

    assert floats.status_code == 422 and no_po.status_code == 422
    assert floats.get_json()["errors"][0]["field"] == "orders[0].lines[0].qty"
    assert no_po.get_json() == {
        "errors": [{"field": "orders[0].customer_po", "message": "required"}]
    }
    assert row_counts(app) == counts


def test_the_batch_needs_a_token_and_is_in_the_openapi_document(app: App, api: Api) -> None:
    assert api.post("/orders/batch", {"orders": []}, as_=None).status_code == 401
    doc = api.get("/openapi.json", as_=None).get_json()
    op = doc["paths"]["/orders/batch"]["post"]
    assert op["operationId"] == "create_batch" and op["security"] == [{"bearer": []}]
    assert {"200", "201", "401", "409", "422"} <= set(op["responses"])
    assert [p["name"] for p in op["parameters"]] == ["Idempotency-Key"]
    schema = doc["components"]["schemas"]["BatchOrderIn"]
    assert "customer_po" in schema["required"]
    assert "Per order, not all or nothing" in op["description"]
