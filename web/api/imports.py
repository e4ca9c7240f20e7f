"""POST /orders/batch: many orders in one call, each one checked and created on its own."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from order_flow.services.import_writer import Outcome
from order_flow.services.importing import ImportService
from order_flow.services.order_input import request_hash
from web import of_app
from web.api.auth import ANY_USER
from web.api.orders import IDEMPOTENCY_KEY, _idempotency_key
from web.api.routing import Call, Result, operation
from web.api.schemas import OrderIn, Strict
from web.api.views import FieldError

#: Orders in one batch; a bigger intake is a file (`order-flow import orders`).
MAX_BATCH = 500


class BatchOrderIn(OrderIn):
    customer_po: str = Field(
        min_length=1,
        max_length=64,
        description="Required here: with the customer it identifies the order, so it is "
        "imported once however often the batch is sent",
    )


class OrderBatchIn(Strict):
    orders: list[BatchOrderIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchItemOut(BaseModel):
    index: int = Field(description="Position in `orders`")
    customer_po: str
    status: Literal["created", "already_imported", "rejected"]
    order_id: int | None = Field(description="The order created now, or the one that existed")
    number: str | None
    errors: list[FieldError] = Field(description='Why it was rejected ("orders[2].lines[0].qty")')


class OrderBatchOut(BaseModel):
    batch_id: int
    created: int
    already_imported: int
    rejected: int
    items: list[BatchItemOut]
    errors: list[FieldError] = Field(description="Every rejected order's errors, in one list")


_STATUS = {"created": "created", "already": "already_imported", "rejected": "rejected"}


def _item(index: int, body: dict[str, Any], outcome: Outcome) -> BatchItemOut:
    errors = [
        FieldError(field=f"orders[{index}].{k}", message=v) for k, v in outcome.errors.items()
    ]
    return BatchItemOut(
        index=index, customer_po=body["customer_po"], status=_STATUS[outcome.status],  # type: ignore[arg-type]
        order_id=outcome.order_id, number=outcome.number, errors=errors,
    )  # fmt: skip


@operation(
    "POST", "/orders/batch", summary="Create and submit many orders", tag="orders",
    rule=ANY_USER, body=OrderBatchIn, response=OrderBatchOut, status=201, also=(200,),
    errors=(400, 409, 422), headers=(IDEMPOTENCY_KEY,),
    description="Up to 500 orders, each with its `customer_po`. **Per order, not all or "
    "nothing:** every good order is created and submitted into the workflow (the automatic "
    "checks then run on it, as on an order entered by hand); a bad one writes nothing and "
    "is listed with its errors. An order whose customer already has an order with that "
    "`customer_po` is not created again: it comes back as `already_imported` with the "
    "existing order, so sending a batch twice, or again after a timeout, creates no "
    "duplicates.\n\nAnswers 201 when every order was created or already there (200 when "
    "none was new), and **422 when any order was rejected** - the body is then the same "
    "report (`items`, and `errors` with fields like `orders[2].lines[0].qty`), and the good "
    "orders of the batch *were* created. A body that does not fit the schema (a float "
    "amount, an unknown field) is refused whole: 422 and nothing written. With "
    "`Idempotency-Key`, a replay answers 200 with the first answer.",
)  # fmt: skip
def create_batch(call: Call) -> Result:
    key = _idempotency_key(call)
    data = call.body.model_dump(exclude_unset=True)
    digest = request_hash(data) if key else None
    service = ImportService(of_app())
    if key is not None and digest is not None:
        done = service.by_key(key, digest)
        if done is not None and done.result is not None:
            replay = OrderBatchOut.model_validate(done.result)
            return Result(replay, 200, {"Idempotent-Replayed": "true"})
    bodies = data["orders"]
    batch_id, outcomes = service.import_bodies(bodies, call.actor, key, digest)
    items = [_item(i, body, o) for i, (body, o) in enumerate(zip(bodies, outcomes, strict=True))]
    counts = {s: sum(1 for it in items if it.status == s) for s in _STATUS.values()}
    out = OrderBatchOut(
        batch_id=batch_id, created=counts["created"],
        already_imported=counts["already_imported"], rejected=counts["rejected"],
        items=items, errors=[e for it in items for e in it.errors],
    )  # fmt: skip
    if key is not None:
        service.store_result(batch_id, out.model_dump(mode="json"))
    status = 422 if out.rejected else 201 if out.created else 200
    return Result(out, status)
