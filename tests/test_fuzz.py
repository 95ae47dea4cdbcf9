"""Fuzz the whole HTTP API from its own OpenAPI schema (schemathesis), against the real service
(uvicorn on 127.0.0.1, real redis-server, real ONNX models).

Every generated request, valid or not, must get an answer that is not a 5xx, with a status code,
content type and body that the schema declares (errors: ``ErrorBody``). Examples per operation are
bounded so the whole module runs in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.config import Settings
from service.embedded_redis import EmbeddedRedis
from tests.conftest import RunningService, start_service

MAX_EXAMPLES = 20


@pytest.fixture(scope="module")
def fuzz_service(redis_server: EmbeddedRedis) -> Iterator[RunningService]:
    running = start_service(redis_url=redis_server.url, max_image_bytes=64 * 1024)
    yield running
    running.stop()


# The schema the app serves at /openapi.json; building the app connects to nothing (that is the lifespan).
schema = schemathesis.openapi.from_dict(create_app(Settings(redis_url="redis://unused")).openapi())



def _normalized(probabilities: object) -> object:
    """Rescale a generated probability map to sum 1, so that fuzzed posts get past that check and
    through the whole pipeline (ids, times, flags still as generated); anything else is left alone."""
    if isinstance(probabilities, dict) and probabilities and all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0 for p in probabilities.values()):
        total = sum(probabilities.values())
        if 0 < total < float("inf"):
            return {label: p / total for label, p in probabilities.items()}
    return probabilities


@schema.hook
def map_body(context: object, body: object) -> object:
    if isinstance(body, dict) and "probabilities" in body:
        return {**body, "probabilities": _normalized(body["probabilities"])}
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return {**body, "items": [{**item, "probabilities": _normalized(item["probabilities"])}
                                  if isinstance(item, dict) and "probabilities" in item else item
                                  for item in body["items"]]}
    return body


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_api_answers_every_request_within_its_schema(case: schemathesis.Case, fuzz_service: RunningService) -> None:
    case.call_and_validate(base_url=fuzz_service.url, timeout=10, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])
