"""Property-based fuzzing of the recommender's OpenAPI schema (schemathesis): no input,
valid or not, may produce a 5xx; invalid input gets a 4xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def api_schema(recommender):
    return schemathesis.openapi.from_url(f"{recommender.url}/docs.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.include(method="POST", path_regex="^/(recommend|similar_items|recommend_batch)$").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, recommender):
    response = case.call(base_url=recommender.url, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path} {case.body!r} -> {response.status_code} " \
                                       f"{response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers.get("content-type", "").startswith("application/json")
