"""The admin API through the local stack: its generated documentation, the gateway's JWT
authorizer in front of it, and schemathesis fuzzing every documented operation."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aws_lambda_powertools import Logger, Metrics
from hypothesis import HealthCheck, settings
from schemathesis import checks as generic_checks
from schemathesis.specs.openapi import checks as openapi_checks

from local.database import Cluster
from local.stack import LocalStack
from pos_gateway.admin.routes import build_resolver, openapi_json
from tests.helpers import e2e_stack_config

pytestmark = pytest.mark.e2e

# Bounded: every operation gets this many generated requests, positive and negative.
EXAMPLES_PER_OPERATION = 12
CHECKS = [
    generic_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(e2e_stack_config(cluster, tmp_path_factory.mktemp("stack"), "admin_api")) as running:
        yield running


@pytest.fixture(scope="module")
def admin_headers(stack: LocalStack) -> dict[str, str]:
    token = stack.admin_token()
    assert token is not None
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def openapi(stack: LocalStack) -> dict[str, Any]:
    answer = requests.get(f"{stack.api_url}/admin/openapi.json", timeout=10)
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _generated_document() -> dict[str, Any]:
    """The document the code generates (what the deployed function serves)."""
    resolver = build_resolver(Logger(service="admin_api"), Metrics(namespace="PosGatewayTest"))
    document: dict[str, Any] = json.loads(openapi_json(resolver))
    return document


DOCUMENT = _generated_document()


def test_the_gateway_serves_the_generated_document(openapi: dict[str, Any]) -> None:
    assert openapi == DOCUMENT


def test_the_documentation_is_public_and_documents_every_error(
    openapi: dict[str, Any], stack: LocalStack
) -> None:
    assert openapi["openapi"].startswith("3.")
    assert openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert {"401", "403", "422"} <= set(answers), f"{method} {path}"
            assert answers["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
            assert operation.get("summary"), f"{method} {path} has no summary"
    page = requests.get(f"{stack.api_url}/admin/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger" in page.text.lower()


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic YWRtaW46YWRtaW4="])
def test_the_authorizer_refuses_requests_without_a_valid_token(
    stack: LocalStack, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = requests.get(f"{stack.api_url}/admin/audit-logs", headers=headers, timeout=10)
    assert answer.status_code == 401


def test_a_token_signed_by_another_key_is_refused(stack: LocalStack) -> None:
    from local.tokens import LocalIssuer

    forged = LocalIssuer().token({"sub": "00000000-0000-4000-8000-000000000001", "role": "admin"})
    answer = requests.get(
        f"{stack.api_url}/admin/audit-logs", headers={"Authorization": f"Bearer {forged}"}, timeout=10
    )
    assert answer.status_code == 401


schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_documented_answers_and_no_5xx(
    case: Any, stack: LocalStack, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=stack.api_url, headers=admin_headers, checks=CHECKS, timeout=30)
