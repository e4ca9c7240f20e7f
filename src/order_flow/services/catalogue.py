"""The guards and step bodies the services provide, gathered for the bootstrap.

Each service module declares ``GUARDS`` and ``STEPS``. ``workflows check`` validates
the definitions against exactly these names, so a step bound in a workflow file that
no module provides is an error before anything is deployed.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from order_flow.engine.core import StateMirror
from order_flow.engine.registry import Guard, Registry, Step, guard_registry, step_registry
from order_flow.services import catalog as catalog_service
from order_flow.services import checks, customers, invoicing, notify, orders
from order_flow.store.invoices import Invoice
from order_flow.store.orders import Order

_MODULES = (customers, catalog_service, orders, checks, invoicing, notify)


def domain_guards() -> Registry[Guard]:
    registry = guard_registry()
    for module in _MODULES:
        for name, fn in module.GUARDS.items():
            registry.add(name, fn)
    return registry


def step_catalogue() -> Registry[Step]:
    registry = step_registry()
    for module in _MODULES:
        for name, fn in module.STEPS.items():
            registry.add(name, fn)
    return registry


def state_mirrors() -> dict[str, StateMirror]:
    """Subjects whose row carries their instance's state (``orders.state``,
    ``invoices.state``) and an order when it was first submitted (``submitted_at``):
    the reports read them without joining the instances or the audit trail."""
    return {
        "order": StateMirror(
            cast(Table, Order.__table__), first_entered=(("submitted", "submitted_at"),)
        ),
        "invoice": StateMirror(cast(Table, Invoice.__table__)),
    }
