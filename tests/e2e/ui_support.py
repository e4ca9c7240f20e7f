"""Helpers for the web UI tests: a Flask app around the test App, users, sign-in, tasks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.engine.actors import Actor
from order_flow.services.users import actor_of
from order_flow.store.orders import Order
from order_flow.store.tables import tasks
from tests.integration.order_helpers import customer, order_body, product, submit
from web import create_app

PASSWORD = "correct-horse-9"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def web(app: App, **config: Any) -> Flask:
    """The real web app, CSRF on (as in production)."""
    return create_app(of_app=app, config={"TESTING": True, **config})


def user(app: App, name: str, role: str = "clerk", groups: tuple[str, ...] = ("sales",)) -> Actor:
    return actor_of(app.users.create(name, role, groups, PASSWORD))


@dataclass
class Browser:
    client: FlaskClient

    def token(self) -> str:
        """The CSRF token of this browser's session, read from a page as a browser would."""
        for path in ("/login", "/inbox/"):
            found = _TOKEN.search(self.client.get(path).get_data(as_text=True))
            if found:
                return found.group(1)
        raise AssertionError("no page with a CSRF token")

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """A form POST with the page's CSRF token, like a browser would send."""
        body = {"csrf_token": self.token(), **(data or {})}
        return self.client.post(path, data=body, **kw)

    def login(self, username: str, password: str = PASSWORD) -> Any:
        return self.post("/login", {"username": username, "password": password})

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def browser(flask_app: Flask, ip: str = "10.0.0.1") -> Browser:
    client = flask_app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return Browser(client)


def signed_in(flask_app: Flask, username: str) -> Browser:
    b = browser(flask_app)
    response = b.login(username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return b


def on_hold_task(
    app: App, creator: Actor, name: str | None = None, priority: str = "normal"
) -> int:
    """A submitted order held for credit: an open task for the sales group."""
    fields = {"credit_limit": "1"}
    if name:
        fields["name"] = name
    buyer = customer(app, creator, **fields)
    goods = product(app, creator)
    order = app.orders.create(order_body(buyer.id, (goods.id, "2"), priority=priority), creator)
    assert submit(app, order, creator) == "on_hold"
    return task_of(app, order)


def task_of(app: App, order: Order) -> int:
    with app.engine.session_factory() as s:
        return int(
            s.scalars(
                select(tasks.c.id)
                .where(tasks.c.instance_id == order.instance_id, tasks.c.status == "open")
                .order_by(tasks.c.id.desc())
            ).first()
            or 0
        )


def task_row(app: App, task_id: int) -> Any:
    with app.engine.session_factory() as s:
        return s.execute(select(tasks).where(tasks.c.id == task_id)).one()
