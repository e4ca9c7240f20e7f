"""Orders: create (idempotent), read, list, submit, cancel, and "why is it waiting?"."""

from __future__ import annotations

from sqlalchemy import select

from order_flow.engine.why import why
from order_flow.errors import NotFoundError, PermissionDeniedError
from order_flow.store.orders import Order
from web import of_app
from web.api.auth import ANY_USER, ORDER_OWNER, may_act_on_order
from web.api.errors import FieldErrors
from web.api.routing import Call, Header, Result, operation
from web.api.schemas import OrderIn, OrderQuery, ReasonIn, SubmitIn, WhyQuery
from web.api.views import OrderOut, OrderPage, WhyOut, order_out, why_out

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Makes a retry safe: the same key with the same body returns the order made the "
    "first time (200); the same key with a different body is a 409.",
    {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"},
)


def _payload(order_id: int) -> OrderOut:
    orders = of_app().orders
    order = orders.get(order_id)
    return order_out(order, orders.state(order_id), orders.progress(order))


def _idempotency_key(call: Call) -> str | None:
    key = call.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128 or not all("!" <= ch <= "~" for ch in key):
        raise FieldErrors({"Idempotency-Key": "1 to 128 printable ASCII characters, no spaces"})
    return key


def _seen(key: str) -> bool:
    with of_app().engine.session_factory() as s:
        return s.scalar(select(Order.id).where(Order.idempotency_key == key)) is not None


@operation(
    "POST", "/orders", summary="Create a draft order", tag="orders", rule=ANY_USER,
    body=OrderIn, response=OrderOut, status=201, also=(200,), errors=(400, 409, 422),
    headers=(IDEMPOTENCY_KEY,),
    description="Creates a draft; prices come from the customer's price list or the "
    "product unless given. Every problem is reported by field (`lines[0].qty`) and "
    "nothing is written. With `Idempotency-Key`, a replay answers 200 with the same order.",
)  # fmt: skip
def create_order(call: Call) -> Result:
    key = _idempotency_key(call)
    replay = key is not None and _seen(key)
    data = call.body.model_dump(exclude_unset=True)
    order = of_app().orders.create(data, call.actor, idempotency_key=key)
    headers = {"Location": f"/api/v1/orders/{order.id}"}
    if replay:
        headers["Idempotent-Replayed"] = "true"
    return Result(_payload(order.id), 200 if replay else 201, headers)


@operation(
    "GET", "/orders", summary="List orders", tag="orders", rule=ANY_USER,
    query=OrderQuery, response=OrderPage,
    description="Newest first. `q` matches the order number, the customer PO or the "
    "customer's name; `state` is a lifecycle state such as draft or on_hold.",
)  # fmt: skip
def list_orders(call: Call) -> OrderPage:
    q = call.query
    service = of_app().orders
    rows, total = service.list(
        customer_id=q.customer_id, state=q.state, priority=q.priority, q=q.q,
        limit=q.limit, offset=q.offset,
    )  # fmt: skip
    items = [order_out(r.order, r.state, service.progress(r.order)) for r in rows]
    return OrderPage(items=items, total=total, limit=q.limit, offset=q.offset)


@operation(
    "GET", "/orders/{order_id}", summary="Read an order", tag="orders", rule=ANY_USER,
    response=OrderOut,
)  # fmt: skip
def get_order(call: Call, order_id: int) -> OrderOut:
    return _payload(order_id)


def _own(call: Call, order_id: int) -> None:
    order = of_app().orders.get(order_id)
    if not may_act_on_order(call.actor, order.created_by):
        raise PermissionDeniedError(f"order {order.number} is {order.created_by}'s")


@operation(
    "POST", "/orders/{order_id}/submit", summary="Submit a draft order", tag="orders",
    rule=ORDER_OWNER, body=SubmitIn, body_required=False, response=OrderOut,
    errors=(400, 403, 409, 422),
    description="Fires `submit`; the automated checks then run in the worker. Answers "
    "409 when the order is not a draft or `expected_version` is stale.",
)  # fmt: skip
def submit_order(call: Call, order_id: int) -> OrderOut:
    _own(call, order_id)
    of_app().orders.submit(order_id, call.actor, expected_version=call.body.expected_version)
    return _payload(order_id)


@operation(
    "POST", "/orders/{order_id}/cancel", summary="Cancel an order", tag="orders",
    rule=ORDER_OWNER, body=ReasonIn, response=OrderOut, errors=(400, 403, 409, 422),
    description="Allowed while no invoice has been issued; releases reserved stock.",
)  # fmt: skip
def cancel_order(call: Call, order_id: int) -> OrderOut:
    reason = call.body.reason.strip()
    if not reason:
        raise FieldErrors({"reason": "required"})
    _own(call, order_id)
    of_app().orders.cancel(order_id, call.actor, reason)
    return _payload(order_id)


@operation(
    "GET", "/orders/{order_id}/why", summary="Why is the order where it is?", tag="orders",
    rule=ANY_USER, query=WhyQuery, response=WhyOut,
    description="Open tasks, pending jobs and the moves out of the current state with "
    "the guards that block them.",
)  # fmt: skip
def why_order(call: Call, order_id: int) -> WhyOut:
    order = of_app().orders.get(order_id)
    if order.instance_id is None:
        raise NotFoundError(f"order {order_id} has no workflow instance")
    return why_out(why(of_app().engine, order.instance_id, call.actor, lang=call.query.lang))
