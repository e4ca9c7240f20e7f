"""The JSON API through Flask's test client: CRUD, validation, auth, conflicts, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from order_flow.bootstrap import App
from order_flow.engine.steps import drain
from tests.e2e.api_support import (
    Api,
    customer_body,
    make_api,
    row_counts,
    seed_customer,
    seed_product,
)


@pytest.fixture
def api(app: App) -> Api:
    return make_api(app)


TAX_CODE = "1060512000000000000"


def _order(
    api: Api,
    customer_id: int,
    product_id: int,
    qty: str = "2",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    body = {"customer_id": customer_id, "lines": [{"product_id": product_id, "qty": qty}], **extra}
    return api.post("/orders", body, headers=headers)


def _setup(app: App, api: Api) -> tuple[int, int]:
    return seed_customer(app, api.actors["alice"]), seed_product(app, api.actors["boss"])


# -- customers and products -------------------------------------------------------------


def test_a_clerk_creates_reads_and_searches_a_customer(app: App, api: Api) -> None:
    created = api.post("/customers", customer_body(name="福州示例贸易有限公司"))
    assert created.status_code == 201, created.json
    customer = created.json
    assert customer["credit_limit"] == "1000000.00" and customer["code"].startswith("C")
    assert created.headers["Location"] == f"/api/v1/customers/{customer['id']}"
    assert api.get(f"/customers/{customer['id']}").json["name"] == "福州示例贸易有限公司"
    found = api.get("/customers", query_string={"q": "示例贸易"}).json
    assert found["total"] == 1 and found["items"][0]["id"] == customer["id"]
    assert "福州示例贸易有限公司".encode() in created.data  # ensure_ascii off


def test_a_bad_tax_id_is_refused_on_its_field_and_nothing_is_written(app: App, api: Api) -> None:
    before = row_counts(app)
    response = api.post("/customers", customer_body(tax_id="91350100M000100Y40", email="x"))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"tax_id", "email"}
    assert row_counts(app) == before


def test_only_a_supervisor_creates_products(app: App, api: Api) -> None:
    body = {"sku": "A-1", "name": "办公椅", "price": "350.00", "on_hand": 20}
    assert api.post("/products", body).status_code == 403
    created = api.post("/products", body, as_="boss")
    assert created.status_code == 201, created.json
    assert created.json["price"] == "350" and created.json["available"] == "20"
    assert api.get("/products", query_string={"q": "A-1"}).json["total"] == 1


# -- orders -----------------------------------------------------------------------------


def test_a_clerk_creates_an_order_and_finds_it_by_every_filter(app: App, api: Api) -> None:
    customer_id, product_id = _setup(app, api)
    created = _order(api, customer_id, product_id, priority="urgent", customer_po="PO-77")
    assert created.status_code == 201, created.json
    order = created.json
    assert order["state"] == "draft" and order["total_gross"] == "226.00"
    assert order["lines"][0]["qty"] == "2"
    assert api.get(f"/orders/{order['id']}").json == order
    _order(api, customer_id, product_id)
    for query in (
        {"customer_id": customer_id, "priority": "urgent"},
        {"state": "draft", "q": "PO-77"},
        {"q": order["number"]},
    ):
        page = api.get("/orders", query_string=query).json
        assert [o["id"] for o in page["items"]] == [order["id"]], query
    page = api.get("/orders", query_string={"limit": 1, "offset": 1}).json
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (2, 1, 1, 1)


def test_bad_order_input_is_refused_field_by_field_and_nothing_is_written(
    app: App, api: Api
) -> None:
    customer_id, product_id = _setup(app, api)
    before = row_counts(app)
    body = {
        "customer_id": customer_id,
        "lines": [{"product_id": product_id, "qty": 2.5}, {"qty": "1"}],
        "colour": "red",
    }
    response = api.post("/orders", body)
    assert response.status_code == 422
    errors = {e["field"]: e["message"] for e in response.json["errors"]}
    assert errors["lines[0].qty"] == 'use a string for decimal amounts, like "12.50"'
    assert errors["lines[1].product_id"] == "required"
    assert errors["colour"] == "unknown field"
    # The service's own checks answer in the same shape.
    response = _order(api, customer_id, product_id, qty="0", promised_date="2000-01-01")
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"lines[0].qty", "promised_date"}
    response = _order(api, 999, product_id)
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "customer_id"
    assert row_counts(app) == before


def test_a_body_that_is_not_json_is_a_400(app: App, api: Api) -> None:
    response = api.call(
        "POST", "/orders", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json == {"errors": [{"field": "body", "message": "malformed JSON"}]}
    assert api.post("/orders", [1, 2]).status_code == 422


def test_the_same_idempotency_key_and_body_returns_the_same_order(app: App, api: Api) -> None:
    customer_id, product_id = _setup(app, api)
    body = {"customer_id": customer_id, "lines": [{"product_id": product_id, "qty": "3"}]}
    key = {"Idempotency-Key": "req-0001"}
    first = api.post("/orders", body, headers=key)
    again = api.post("/orders", body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.get("/orders").json["total"] == 1


def test_the_same_idempotency_key_with_another_body_is_a_409(app: App, api: Api) -> None:
    customer_id, product_id = _setup(app, api)
    key = {"Idempotency-Key": "req-0002"}
    assert _order(api, customer_id, product_id, headers=key).status_code == 201
    other = api.post(
        "/orders",
        {"customer_id": customer_id, "lines": [{"product_id": product_id, "qty": "9"}]},
        headers=key,
    )
    assert other.status_code == 409 and other.json["error"] == "conflict"
    assert api.get("/orders").json["total"] == 1
    bad = _order(api, customer_id, product_id, headers={"Idempotency-Key": "x" * 129})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "Idempotency-Key"


def test_only_the_creator_or_a_supervisor_submits_and_cancels(app: App, api: Api) -> None:
    customer_id, product_id = _setup(app, api)
    order_id = _order(api, customer_id, product_id).json["id"]
    assert api.post(f"/orders/{order_id}/submit", as_="bob").status_code == 403
    assert api.post(f"/orders/{order_id}/cancel", {"reason": "x"}, as_="bob").status_code == 403
    submitted = api.post(f"/orders/{order_id}/submit")
    assert submitted.status_code == 200 and submitted.json["state"] == "submitted"
    again = api.post(f"/orders/{order_id}/submit")
    assert again.status_code == 409 and again.json["error"] == "transition_not_allowed"
    other = _order(api, customer_id, product_id).json
    assert api.post(f"/orders/{other['id']}/cancel", {"reason": " "}).status_code == 422
    cancelled = api.post(f"/orders/{other['id']}/cancel", {"reason": "客户取消"}, as_="boss")
    assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"


def test_a_stale_expected_version_is_a_409(app: App, api: Api) -> None:
    customer_id, product_id = _setup(app, api)
    order_id = _order(api, customer_id, product_id).json["id"]
    stale = api.post(f"/orders/{order_id}/submit", {"expected_version": 7})
    assert stale.status_code == 409 and stale.json["error"] == "conflict"
    assert api.get(f"/orders/{order_id}").json["state"] == "draft"


def test_why_says_what_an_order_waits_for(app: App, api: Api) -> None:
    customer_id, product_id = _setup(app, api)
    order_id = _order(api, customer_id, product_id).json["id"]
    why = api.get(f"/orders/{order_id}/why", query_string={"lang": "en"}).json
    assert why["state"] == "draft" and why["state_label"] == "Draft"
    assert {m["trigger"] for m in why["moves"]} == {"submit", "cancel"}
    api.post(f"/orders/{order_id}/submit")
    assert api.get(f"/orders/{order_id}/why").json["jobs"][0]["step"] == "order.run_checks"


# -- auth and errors --------------------------------------------------------------------


def test_without_a_valid_token_every_call_is_a_401(app: App, api: Api) -> None:
    missing = api.get("/orders", as_=None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = api.get("/orders", as_=None, headers={"Authorization": "Bearer oft_nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = api.get("/orders", as_=None, headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert basic.status_code == 401
    app.users.disable("alice")
    assert api.get("/orders").status_code == 401


def test_unknown_paths_methods_ids_and_parameters_answer_in_json(app: App, api: Api) -> None:
    assert api.get("/nothing/here").json["error"] == "not_found"
    assert api.get("/orders/99").status_code == 404
    assert api.get(f"/orders/{2**40}").status_code == 404
    deleted = api.call("DELETE", "/orders/1")
    assert deleted.status_code == 405 and deleted.headers["Allow"] == "GET"
    too_many = api.get("/orders", query_string={"limit": 201})
    assert too_many.status_code == 422 and too_many.json["errors"][0]["field"] == "limit"
    assert api.get("/orders", query_string={"colour": "red"}).status_code == 422
    nul = api.get("/customers", query_string={"q": "a\x00b"})
    assert nul.status_code == 422 and nul.json["errors"][0]["field"] == "q"


def test_the_openapi_document_is_public_and_lists_every_operation(app: App, api: Api) -> None:
    doc = api.get("/openapi.json", as_=None).json
    assert doc["openapi"].startswith("3.1")
    operations = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert ("POST", "/orders") in operations and ("GET", "/invoices/buckets") in operations
    assert len(operations) == 20
    create = doc["paths"]["/orders"]["post"]
    assert {"200", "201", "400", "401", "403", "409", "422"} <= set(create["responses"])
    assert "Who may call it" in create["description"]


# -- tasks, invoices and payments -------------------------------------------------------


def test_review_tasks_invoicing_and_payments_through_the_api(app: App, api: Api) -> None:
    customer_id = seed_customer(app, api.actors["alice"])
    product_id = app.catalog.create_product(
        {"sku": "T-1", "name": "椅子", "price": "100", "on_hand": "50", "tax_code": TAX_CODE},
        api.actors["boss"],
    ).id
    order_id = _order(api, customer_id, product_id, qty="1").json["id"]
    api.post(f"/orders/{order_id}/submit")
    drain(app)
    assert api.get(f"/orders/{order_id}").json["state"] == "review"

    tasks = api.get("/tasks", as_="bob").json
    assert tasks["total"] == 1 and api.get("/tasks?mine=1", as_="bob").json["total"] == 0
    task_id = tasks["items"][0]["id"]
    assert api.post(f"/tasks/{task_id}/claim", as_="bob").json["task_id"] == task_id
    assert api.get("/tasks?mine=1", as_="bob").json["items"][0]["id"] == task_id
    assert api.post(f"/tasks/{task_id}/claim", as_="boss").status_code == 409
    taken = api.post(f"/tasks/{task_id}/complete", {"outcome": "approve"}, as_="boss")
    assert taken.status_code == 403
    bad = api.post(f"/tasks/{task_id}/complete", {"outcome": "maybe"}, as_="bob")
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "outcome"
    done = api.post(f"/tasks/{task_id}/complete", {"outcome": "approve"}, as_="bob")
    assert done.status_code == 200, done.json
    second = api.get("/tasks", as_="boss").json["items"][0]["id"]
    api.post(f"/tasks/{second}/complete", {"outcome": "approve", "comment": "ok"}, as_="boss")
    drain(app)
    assert api.get(f"/orders/{order_id}").json["state"] == "approved"

    invoices = api.get("/invoices", query_string={"order_id": order_id, "bucket": "issued"}).json
    assert invoices["total"] == 1
    invoice = invoices["items"][0]
    assert invoice["number"] and invoice["total_gross"] == "113.00"
    assert api.get("/invoices/buckets").json["issued"] == {"count": 1, "amount": "113.00"}
    assert api.get(f"/invoices/{invoice['id']}").json == invoice

    pay = {"amount": "100.00", "paid_on": "2026-03-31", "reference": "BANK-1"}
    path = f"/invoices/{invoice['id']}/payments"
    assert api.post(path, pay).status_code == 403
    before = row_counts(app)
    over = api.post(path, {**pay, "amount": "500"}, as_="fin")
    assert over.status_code == 422 and over.json["errors"][0]["field"] == "amount"
    assert api.post(path, {**pay, "amount": 100.0}, as_="fin").status_code == 422
    assert row_counts(app) == before
    paid = api.post(path, pay, as_="fin")
    assert paid.status_code == 201 and paid.json["amount"] == "100.00"
    assert api.get(f"/invoices/{invoice['id']}").json["payment_status"] == "partial"
    twice = api.post(path, {**pay, "amount": "1"}, as_="boss")
    assert twice.status_code == 422 and twice.json["errors"][0]["field"] == "reference"
