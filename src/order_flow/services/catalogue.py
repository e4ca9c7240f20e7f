"""Guards and steps that need order and invoice data.

The order and invoice services (the domain issue) replace the interim guard
bodies below with queries on their own tables; until then these guards read
facts that the caller stores in the instance context, and the step catalogue
lists the names the worker will implement. Both are declared here so that the
shipped workflow files validate against one list.
"""

from __future__ import annotations

from decimal import Decimal

from order_flow.engine.registry import (
    Guard,
    GuardContext,
    Registry,
    Step,
    guard_registry,
    step_registry,
)


def _facts(ctx: GuardContext) -> dict[str, object]:
    return dict(ctx.instance.context or {})


def no_invoice_issued(ctx: GuardContext) -> bool:
    """Cancel and amend are allowed only while no invoice of the subject was issued."""
    return int(str(_facts(ctx).get("invoices_issued", 0))) == 0


def fully_delivered_and_billed(ctx: GuardContext) -> bool:
    facts = _facts(ctx)
    return (
        Decimal(str(facts.get("delivered_pct", "0"))) >= 100
        and Decimal(str(facts.get("billed_pct", "0"))) >= 100
    )


def fully_reversed(ctx: GuardContext) -> bool:
    """The red-letter amounts now cover the whole blue invoice."""
    facts = _facts(ctx)
    total = Decimal(str(facts.get("total", "0")))
    reversed_ = Decimal(str(facts.get("reversed", "0")))
    return total > 0 and reversed_ >= total


DOMAIN_GUARDS: dict[str, Guard] = {
    "no_invoice_issued": no_invoice_issued,
    "fully_delivered_and_billed": fully_delivered_and_billed,
    "fully_reversed": fully_reversed,
}

#: Automated steps bound to states in workflows/; the worker registers their bodies.
STEP_NAMES = (
    "order.run_checks",
    "order.reserve_and_invoice",
    "invoice.prepare",
    "invoice.issue",
    "invoice.notify",
)


def domain_guards() -> Registry[Guard]:
    registry = guard_registry()
    for name, fn in DOMAIN_GUARDS.items():
        registry.add(name, fn)
    return registry


def _not_on_this_process(name: str) -> Step:
    def run(*_args: object, **_kwargs: object) -> None:
        raise LookupError(f"step '{name}' runs on a worker; no body is registered here")

    run.__name__ = name.replace(".", "_")
    return run


def step_catalogue() -> Registry[Step]:
    registry = step_registry()
    for name in STEP_NAMES:
        registry.add(name, _not_on_this_process(name))
    return registry
