"""Schemathesis fuzzing of every operation in /api/v1/openapi.json, through WSGI.

Bounded (a fixed number of examples per operation and mode, derandomised so a run
is repeatable); every response must be no 5xx and conform to the document:
declared status, JSON content type, and a body matching the declared schema.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from order_flow.bootstrap import App
from order_flow.engine.steps import drain
from tests.e2e.api_support import Api, make_api, seed_customer, seed_product


@pytest.fixture
def api(app: App) -> Api:
    return make_api(app)


EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _seed(app: App, api: Api) -> None:
    """A few rows with small ids, so generated ids sometimes hit something real."""
    clerk, boss = api.actors["alice"], api.actors["boss"]
    customers = [seed_customer(app, clerk) for _ in range(2)]
    products = [seed_product(app, boss) for _ in range(2)]
    for customer_id in customers:
        order = app.orders.create(
            {"customer_id": customer_id, "lines": [{"product_id": products[0], "qty": "2"}]},
            clerk,
        )
        app.orders.submit(order.id, clerk)
    app.orders.create(
        {"customer_id": customers[0], "lines": [{"product_id": products[1], "qty": "1"}]}, clerk
    )
    drain(app)


def test_every_operation_answers_within_its_schema_under_fuzzing(app: App, api: Api) -> None:
    _seed(app, api)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api.client.application)
    headers = {"Authorization": f"Bearer {api.tokens['boss']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 20
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # collect all, report together
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
