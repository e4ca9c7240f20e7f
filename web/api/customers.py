"""Customers and products: master data."""

from __future__ import annotations

from web import of_app
from web.api.auth import ANY_USER, SUPERVISOR
from web.api.routing import Call, Result, operation
from web.api.schemas import CustomerIn, ProductIn, SearchQuery
from web.api.views import (
    CustomerCreatedOut,
    CustomerOut,
    CustomerPage,
    ProductOut,
    ProductPage,
    customer_out,
    product_out,
)


@operation(
    "POST", "/customers", summary="Create a customer", tag="customers", rule=ANY_USER,
    body=CustomerIn, response=CustomerCreatedOut, status=201, errors=(400, 422),
    description="The tax ID must be unique (422 on tax_id otherwise). A customer with a "
    "similar normalised name is created anyway and named in `warnings`.",
)  # fmt: skip
def create_customer(call: Call) -> Result:
    created = of_app().customers.create(call.body.model_dump(exclude_unset=True), call.actor)
    out = customer_out(of_app().customers.get(created.customer.id))  # contacts loaded
    payload = CustomerCreatedOut(**out.model_dump(), warnings=created.warnings)
    return Result(payload, headers={"Location": f"/api/v1/customers/{out.id}"})


@operation(
    "GET", "/customers", summary="List customers", tag="customers", rule=ANY_USER,
    query=SearchQuery, response=CustomerPage,
    description="`q` matches the code, the name (also normalised) or the exact tax ID.",
)  # fmt: skip
def list_customers(call: Call) -> CustomerPage:
    q = call.query
    rows, total = of_app().customers.list(q.q, limit=q.limit, offset=q.offset)
    items = [customer_out(c) for c in rows]
    return CustomerPage(items=items, total=total, limit=q.limit, offset=q.offset)


@operation(
    "GET", "/customers/{customer_id}", summary="Read a customer", tag="customers",
    rule=ANY_USER, response=CustomerOut,
)  # fmt: skip
def get_customer(call: Call, customer_id: int) -> CustomerOut:
    return customer_out(of_app().customers.get(customer_id))


@operation(
    "POST", "/products", summary="Create a product", tag="products", rule=SUPERVISOR,
    body=ProductIn, response=ProductOut, status=201, errors=(400, 422),
    description="`on_hand` is the opening stock; later stock moves go through receiving "
    "and reservations. The SKU must be unique.",
)  # fmt: skip
def create_product(call: Call) -> Result:
    product = of_app().catalog.create_product(call.body.model_dump(exclude_unset=True), call.actor)
    return Result(product_out(product), headers={"Location": f"/api/v1/products/{product.id}"})


@operation(
    "GET", "/products", summary="List products", tag="products", rule=ANY_USER,
    query=SearchQuery, response=ProductPage, description="`q` matches the SKU or the name.",
)  # fmt: skip
def list_products(call: Call) -> ProductPage:
    q = call.query
    rows, total = of_app().catalog.list_products(q.q, limit=q.limit, offset=q.offset)
    items = [product_out(p) for p in rows]
    return ProductPage(items=items, total=total, limit=q.limit, offset=q.offset)


@operation(
    "GET", "/products/{product_id}", summary="Read a product", tag="products",
    rule=ANY_USER, response=ProductOut,
)  # fmt: skip
def get_product(call: Call, product_id: int) -> ProductOut:
    return product_out(of_app().catalog.get_product(product_id))
