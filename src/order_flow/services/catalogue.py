"""The guards and step bodies the services provide, gathered for the bootstrap.

Each service module declares ``GUARDS`` and ``STEPS``; a step name bound in a
workflow file but provided by no module (today: the notification step, which
the worker issue builds) is listed in ``PENDING_STEPS`` with a body that fails
loudly, so a job for it becomes a visible error, never a silent success.
"""

from __future__ import annotations

from order_flow.engine.registry import Guard, Registry, Step, guard_registry, step_registry
from order_flow.services import catalog as catalog_service
from order_flow.services import checks, customers, invoicing, notify, orders

_MODULES = (customers, catalog_service, orders, checks, invoicing, notify)

#: Declared in workflows/ but not yet implemented by any service module.
PENDING_STEPS: tuple[str, ...] = ()


def domain_guards() -> Registry[Guard]:
    registry = guard_registry()
    for module in _MODULES:
        for name, fn in module.GUARDS.items():
            registry.add(name, fn)
    return registry


def _not_built(name: str) -> Step:
    def run(*_args: object, **_kwargs: object) -> None:
        raise NotImplementedError(f"step '{name}' has no body yet")

    run.__name__ = name.replace(".", "_")
    return run


def step_catalogue() -> Registry[Step]:
    registry = step_registry()
    for module in _MODULES:
        for name, fn in module.STEPS.items():
            registry.add(name, fn)
    for name in PENDING_STEPS:
        if name not in registry:
            registry.add(name, _not_built(name))
    return registry
