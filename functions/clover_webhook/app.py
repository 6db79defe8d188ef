"""POST /webhooks/clover: the verification POST, or a delivery checked, stored, enqueued, answered 200."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.http import json_response, raw_body, register_error_responses
from pos_gateway.ingest.clover import CloverIngestResult, CloverWebhookAck, clover_ingest_from_settings
from pos_gateway.providers.clover.settings import CloverWebhookSettings
from pos_gateway.providers.clover.webhook import CLOVER_AUTH_HEADER

logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver()
register_error_responses(app, logger, metrics)
ingest = clover_ingest_from_settings(CloverWebhookSettings.from_env(), boto3.client("sqs"))


@app.post("/webhooks/clover")
def clover_webhook() -> Response[str]:
    event = app.current_event
    result = ingest.receive(
        raw_body(event.body, bool(event.is_base64_encoded)),
        event.headers.get(CLOVER_AUTH_HEADER),  # HTTP API v2 lowercases header names
    )
    _count(result)
    return json_response(200, CloverWebhookAck.of(result))


def _count(result: CloverIngestResult) -> None:
    if result.verification:
        metrics.add_metric(name="CloverVerificationCodes", unit=MetricUnit.Count, value=1)
        return
    for name, value in (
        ("Webhook_accepted", result.accepted),
        ("Webhook_duplicate", result.duplicates),
        ("Webhook_quarantined", result.quarantined),
        ("UnknownMerchantEvents", result.quarantined),
        ("EnqueueFailures", result.enqueue_failures),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
