"""Admin API: tenants, users, wallets, rules, POS connections, operations and the audit trail.

Behind the API Gateway JWT authorizer (claims only; the token is never parsed here), except
GET /admin/openapi.json and /admin/docs. Routes live in pos_gateway.admin.routes.
"""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.admin.routes import SERVICES_KEY, build_resolver
from pos_gateway.admin.services import admin_services_from_settings
from pos_gateway.http import refuse_unreadable_body
from pos_gateway.settings import AdminSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
settings = AdminSettings.from_env()
services = admin_services_from_settings(settings, boto3.client("sqs"))
app = build_resolver(logger, metrics)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    refusal = refuse_unreadable_body(event, settings.max_body_bytes)
    if refusal is not None:
        return refusal
    app.append_context(**{SERVICES_KEY: services})
    return app.resolve(event, context)
