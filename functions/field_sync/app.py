"""Offline field-sales devices: POST /sync/push, GET /sync/pull, GET /sync/customers/{id}/debt.

Authenticated per device (``Authorization: Bearer fsd_...``, checked against the hashed
credential in the database); the tenant and the seller come from the device, never the request.
"""

from uuid import UUID

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory
from pos_gateway.field import debt, pull
from pos_gateway.field.devices import Device, authenticate
from pos_gateway.field.push import PushService
from pos_gateway.http import (
    ApiError,
    json_response,
    raw_body,
    refuse_unreadable_body,
    register_error_responses,
)
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.settings import FieldSyncSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver()
register_error_responses(app, logger, metrics)
settings = FieldSyncSettings.from_env()
connections = ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds))
queue = IngestQueue(settings.ingest_queue_url, boto3.client("sqs"))
pushes = PushService(connections, queue.enqueue_or_leave)


def _device() -> Device:
    device = authenticate(connections.get(), app.current_event.headers.get("authorization"))
    logger.append_keys(tenant_id=str(device.tenant_id), device_id=str(device.device_id))
    return device


@app.post("/sync/push")
def push() -> Response[str]:
    device = _device()
    event = app.current_event
    response = pushes.push(device, raw_body(event.body, bool(event.is_base64_encoded)))
    summary = response.summary
    for name, value in (
        ("FieldOpsSynced", summary.synced),
        ("FieldOpsError", summary.error),
        ("FieldOpsConflict", summary.conflict),
        ("FieldOpsReplayed", summary.replayed),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("push applied", extra=summary.model_dump())
    return json_response(200, response)


@app.get("/sync/pull")
def pull_changes() -> Response[str]:
    device = _device()
    query = pull.parse_pull_query(app.current_event.query_string_parameters)
    return json_response(200, pull.pull(connections, device, query.cursor, query.limit))


@app.get("/sync/customers/<customer_id>/debt")
def customer_debt(customer_id: str) -> Response[str]:
    device = _device()
    return json_response(200, debt.customer_debt(connections, device, _uuid("customerId", customer_id)))


def _uuid(name: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ApiError(
            f"{name} must be a UUID",
            [{"loc": name, "type": "uuid_parsing", "msg": "not a UUID"}],
            status_code=422,
            code="validation_failed",
        ) from None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    refusal = refuse_unreadable_body(event, settings.max_body_bytes)
    if refusal is not None:
        return refusal
    return app.resolve(event, context)
