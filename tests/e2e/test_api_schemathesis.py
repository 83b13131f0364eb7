"""Property-based tests of the live OpenAPI document (schemathesis).

For every operation, generated requests (valid ones, and ones that break the schema)
never get a 5xx (R32), and every answer matches the documented status codes, content
types and schemas. Bounded: a dozen examples per operation and mode.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_conformance(api_sqlite: Api, mode: GenerationMode) -> None:
    api = api_sqlite
    agency = api.agency("olga", mia="member")
    api.earnings(agency, 10_000)
    api.propose("mia", api.job(3), agency)
    headers = api.headers("olga")
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    # Valid requests aim at the owner's real agency, so they reach the handlers.
    path_parameters = {"account_id": agency} if mode is GenerationMode.POSITIVE else None
    tested = []
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        known = {p.name for p in operation.path_parameters}
        params = {k: v for k, v in (path_parameters or {}).items() if k in known} or None
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.append(response.status_code)

        try:
            check()
        except Unsatisfiable:  # nothing to break: an operation without any input
            assert mode is GenerationMode.NEGATIVE
            continue
        tested.append(operation.label)
    # The generated requests reached the handlers, not only the validation layer.
    assert any(200 <= s < 300 for s in statuses) and 422 in statuses
    print(mode, len(statuses), sorted(set(statuses)))
    assert len(tested) >= (35 if mode is GenerationMode.POSITIVE else 20), tested
