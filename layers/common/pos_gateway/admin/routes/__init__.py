"""The admin API's resolver: every router, the error bodies, and the generated documentation."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.metrics import MetricUnit

from pos_gateway.admin.routes import (
    audit_logs,
    connections,
    field,
    operations,
    rpapos,
    rules,
    tenants,
    users,
    wallets,
)
from pos_gateway.admin.routes.common import SERVICES_KEY
from pos_gateway.http import error_response, register_error_responses, validation_fields

OPENAPI_PATH = "/admin/openapi.json"
DOCS_PATH = "/admin/docs"
TITLE = "POS Gateway admin API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Operators run merchants' loyalty programs through this API. Every change writes one audit "
    "row in its own transaction; mistakes are reversed by new entries, never edits. Tokens are "
    "verified by the API Gateway JWT authorizer; claims: sub (user id), role (admin | client | "
    "pos_operator), tenant_id (tenant roles)."
)
ROUTERS = (
    tenants.router,
    users.router,
    wallets.router,
    rules.router,
    connections.router,
    rpapos.router,
    field.router,
    operations.router,
    audit_logs.router,
)
__all__ = ["DOCS_PATH", "OPENAPI_PATH", "SERVICES_KEY", "build_resolver", "openapi_json"]


def build_resolver(logger: Logger, metrics: Metrics) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    for router in ROUTERS:
        app.include_router(router)
    register_error_responses(app, logger, metrics)

    @app.exception_handler(RequestValidationError)
    def invalid_input(error: RequestValidationError) -> Response[str]:
        fields = validation_fields(error.errors())
        if any(field["type"] == "json_invalid" for field in fields):
            metrics.add_metric(name="Refused_malformed_json", unit=MetricUnit.Count, value=1)
            return error_response(400, "malformed_json", "the body is not valid JSON", fields)
        metrics.add_metric(name="Refused_invalid_request", unit=MetricUnit.Count, value=1)
        logger.info("request refused", extra={"code": "invalid_request", "fields": fields})
        return error_response(422, "invalid_request", "the request does not fit the route's schema", fields)

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(200, content_types.APPLICATION_JSON, openapi_json(app))

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> Response[str]:
        return Response(200, "text/html", swagger_html(app))

    return app


def openapi_json(app: APIGatewayHttpResolver) -> str:
    return _openapi_json(id(app), app)


@cache
def _openapi_json(_: int, app: APIGatewayHttpResolver) -> str:
    schema: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
            security=[{"bearerAuth": []}],
        )
    )
    # Input errors answer our error body (not the resolver's default shape).
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answers = operation.get("responses", {})
            if "422" in answers:
                answers["422"] = {
                    "description": "Invalid input: error.fields names each problem",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(unused, None)
    return json.dumps(schema, separators=(",", ":"))


def swagger_html(app: APIGatewayHttpResolver) -> str:
    return _swagger_html(id(app), app)


@cache
def _swagger_html(_: int, app: APIGatewayHttpResolver) -> str:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    return generate_swagger_html(
        openapi_json(app).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
