"""POST /webhooks/square: verify the signature, store the raw event, enqueue it, answer 200."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.http import json_response, raw_body, register_error_responses
from pos_gateway.ingest import square_ingest_from_settings
from pos_gateway.ingest.service import (
    SQUARE_SIGNATURE_HEADER,
    IngestOutcome,
    IngestResult,
    WebhookAck,
)
from pos_gateway.settings import IngestSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver()
register_error_responses(app, logger, metrics)
ingest = square_ingest_from_settings(IngestSettings.from_env(), boto3.client("sqs"))


@app.post("/webhooks/square")
def square_webhook() -> Response[str]:
    event = app.current_event
    result = ingest.receive(
        raw_body(event.body, bool(event.is_base64_encoded)),
        event.headers.get(SQUARE_SIGNATURE_HEADER),  # HTTP API v2 lowercases header names
    )
    _count(result)
    return json_response(200, WebhookAck.of(result))


def _count(result: IngestResult) -> None:
    metrics.add_metric(name=f"Webhook_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    if result.outcome is IngestOutcome.QUARANTINED:
        metrics.add_metric(name="UnknownMerchantEvents", unit=MetricUnit.Count, value=1)
    if result.outcome is IngestOutcome.ACCEPTED and not result.enqueued:
        metrics.add_metric(name="EnqueueFailures", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
