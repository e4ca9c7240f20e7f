"""The one place that wires concrete adapters together (web, worker, CLI, tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine as SqlEngine

from order_flow.config import Settings
from order_flow.domain.calendar import BusinessCalendar, WorkingHours
from order_flow.engine.core import Engine
from order_flow.engine.guards import engine_guards
from order_flow.engine.publisher import NullPublisher, Publisher
from order_flow.engine.tasks import TaskService
from order_flow.services.catalogue import domain_guards, state_mirrors, step_catalogue
from order_flow.store.db import make_engine, make_session_factory
from order_flow.store.types import utcnow

if TYPE_CHECKING:
    from order_flow.services.catalog import CatalogService
    from order_flow.services.customers import CustomerService
    from order_flow.services.invoicing import InvoiceService
    from order_flow.services.orders import OrderService
    from order_flow.services.users import UserService


@dataclass
class App:
    settings: Settings
    db: SqlEngine
    engine: Engine
    tasks: TaskService

    def close(self) -> None:
        self.db.dispose()

    # Services are built on first use; each takes the app and nothing else.

    @cached_property
    def users(self) -> UserService:
        from order_flow.services.users import UserService

        return UserService(self)

    @cached_property
    def customers(self) -> CustomerService:
        from order_flow.services.customers import CustomerService

        return CustomerService(self)

    @cached_property
    def catalog(self) -> CatalogService:
        from order_flow.services.catalog import CatalogService

        return CatalogService(self)

    @cached_property
    def orders(self) -> OrderService:
        from order_flow.services.orders import OrderService

        return OrderService(self)

    @cached_property
    def invoices(self) -> InvoiceService:
        from order_flow.services.invoicing import InvoiceService

        return InvoiceService(self)


def working_hours(settings: Settings) -> WorkingHours:
    periods = []
    for part in settings.business_hours.split(","):
        start, _, end = part.strip().partition("-")
        periods.append((time.fromisoformat(start), time.fromisoformat(end)))
    return WorkingHours(periods=tuple(periods), tz=settings.timezone)


def bootstrap(
    settings: Settings | None = None,
    *,
    publisher: Publisher | None = None,
    clock: Callable[[], datetime] = utcnow,
    db: SqlEngine | None = None,
) -> App:
    settings = settings or Settings.from_env()
    db = db or make_engine(settings.database_url, echo=settings.sql_echo)
    engine = Engine(
        session_factory=make_session_factory(db),
        guards=engine_guards().merged(domain_guards()),
        calendar=BusinessCalendar(working_hours(settings)),
        publisher=publisher or NullPublisher(),
        steps=step_catalogue(),
        clock=clock,
        mirrors=state_mirrors(),
    )
    return App(settings, db, engine, TaskService(engine))
