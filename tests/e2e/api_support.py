"""Shared builders of the API tests: a Flask client, users with tokens, seed data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from order_flow.bootstrap import App
from order_flow.domain.taxid import compute_uscc_check
from order_flow.engine.actors import Actor
from order_flow.services.users import actor_of
from order_flow.store.schema import Base
from web import create_app

PREFIX = "/api/v1"


@dataclass
class Api:
    """A test client that speaks as one of the seeded users."""

    client: FlaskClient
    tokens: dict[str, str]
    actors: dict[str, Actor]

    def call(
        self,
        method: str,
        path: str,
        as_: str | None = "alice",
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        all_headers = dict(headers or {})
        if as_ is not None:
            all_headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        return self.client.open(
            PREFIX + path, method=method, json=json, headers=all_headers, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, json=json, **kwargs)


#: (username, role, groups)
USERS = (
    ("alice", "clerk", ("sales",)),
    ("bob", "clerk", ("sales",)),
    ("boss", "supervisor", ("sales",)),
    ("fin", "clerk", ("finance",)),
)


def flask_app(app: App) -> Flask:
    return create_app(app.settings, of_app=app, config={"TESTING": True})


def make_api(app: App) -> Api:
    app.catalog.seed_tax_rates()
    tokens, actors = {}, {}
    for name, role, groups in USERS:
        user = app.users.create(name, role=role, groups=groups)
        tokens[name] = app.users.issue_token(name)
        actors[name] = actor_of(app.users.get(name))
        assert user.id is not None
    return Api(flask_app(app).test_client(), tokens, actors)


_serial = iter(range(1, 10**6))


def uscc(n: int) -> str:
    first17 = f"91350100M{n:08d}"
    return first17 + compute_uscc_check(first17)


def customer_body(**fields: Any) -> dict[str, Any]:
    n = next(_serial)
    return {"name": f"测试客户{n}有限公司", "tax_id": uscc(n), "credit_limit": "1000000", **fields}


def seed_customer(app: App, actor: Actor, **fields: Any) -> int:
    return app.customers.create(customer_body(**fields), actor).customer.id


def seed_product(app: App, actor: Actor, price: str = "100", on_hand: str = "1000") -> int:
    n = next(_serial)
    data = {"sku": f"SKU-{n}", "name": f"产品{n}", "price": price, "on_hand": on_hand}
    return app.catalog.create_product(data, actor).id


def row_counts(app: App) -> dict[str, int]:
    """Rows per table, for "nothing was written" checks."""
    with app.engine.session_factory() as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }
