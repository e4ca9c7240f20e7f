"""What the browser walkthroughs share: signing in, ``expect``, and reading the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from order_flow.bootstrap import App
from order_flow.services.demo import demo_password
from order_flow.store.models import AuditEvent
from order_flow.store.orders import Order
from order_flow.store.tables import instances, tasks

if TYPE_CHECKING:
    from playwright.sync_api import Page, expect
else:

    def expect(actual: Any, message: str | None = None) -> Any:
        """playwright's expect, imported on use: without playwright the ``chromium``
        fixture skips (or, in CI, fails) the test instead of the module failing to import."""
        from playwright.sync_api import expect as playwright_expect

        return playwright_expect(actual, message)


def sign_in(page: Page, username: str) -> None:
    """Sign in through the login form with the demo password; lands on the inbox."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", demo_password(username))
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/inbox/**")


def choose(page: Page, select: str, text: str) -> None:
    """Pick the option of a <select> whose label contains ``text`` (labels carry codes)."""
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    assert value, f"no option {text!r} in {select}"
    page.select_option(select, value)


def order_by_number(app: App, number: str) -> tuple[Order, str]:
    """The order and its lifecycle state."""
    with app.engine.session_factory() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        state = s.scalar(select(instances.c.state).where(instances.c.id == order.instance_id))
        return order, str(state)


def orders_in(app: App, state: str, **where: Any) -> list[Order]:
    """Orders in a lifecycle state (and with the given column values), oldest first."""
    with app.engine.session_factory() as s:
        stmt = (
            select(Order)
            .join(instances, instances.c.id == Order.instance_id)
            .where(instances.c.state == state)
            .order_by(Order.id)
        )
        for name, value in where.items():
            stmt = stmt.where(getattr(Order, name) == value)
        return list(s.scalars(stmt))


def open_task_of(app: App, order: Order) -> Any:
    """The open task row of an order (None when there is none)."""
    with app.engine.session_factory() as s:
        return s.execute(
            select(tasks).where(tasks.c.instance_id == order.instance_id, tasks.c.status == "open")
        ).first()


def task(app: App, task_id: int) -> Any:
    with app.engine.session_factory() as s:
        return s.execute(select(tasks).where(tasks.c.id == task_id)).one()


def audit_of(app: App, instance_id: int, kind: str) -> list[AuditEvent]:
    with app.engine.session_factory() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.instance_id == instance_id, AuditEvent.kind == kind)
                .order_by(AuditEvent.id)
            )
        )


def user_id(app: App, username: str) -> int:
    return app.users.get(username).id
