"""SQS → crediting: each record is one raw event, processed in its own DB transaction.

Failed records are reported back (partial batch failure) and retried by SQS; after
maxReceiveCount they are parked in the dead-letter queue. Work that must wait (a busy provider,
a refund ahead of its payment) is made visible again after its backoff, never slept on here.
"""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.loyalty import crediting_from_settings
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.clover.settings import CloverCreditingSettings
from pos_gateway.providers.errors import RetryLater
from pos_gateway.recovery import failure_log_from_settings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)
settings = CloverCreditingSettings.from_env()
sqs = boto3.client("sqs")
crediting = crediting_from_settings(settings)
failures = failure_log_from_settings(settings)


def record_handler(record: SQSRecord) -> None:
    request: CreditRequest | None = None
    try:
        request = CreditRequest.model_validate_json(record.body)
        result = crediting.process(request)
    except RetryLater as wait:
        _retry_after(record, wait.retry_after_seconds)
        metrics.add_metric(name="RetriesLater", unit=MetricUnit.Count, value=1)
        logger.warning("record deferred", extra={"message_id": record.message_id, "reason": str(wait)})
        raise
    except Exception as error:
        logger.exception("record failed; SQS will redeliver it", extra={"message_id": record.message_id})
        metrics.add_metric(name="RecordFailures", unit=MetricUnit.Count, value=1)
        if request is not None:
            # Its own small transaction (the failed one was rolled back); never raises.
            failures.record(request, error)
        raise
    metrics.add_metric(name=f"Processed_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    if result.points_earned:
        metrics.add_metric(name="PointsCredited", unit=MetricUnit.Count, value=result.points_earned)
    if result.points_reversed:
        metrics.add_metric(name="PointsReversed", unit=MetricUnit.Count, value=result.points_reversed)
    if result.points_shortfall:
        # Points a refund could not take back: the member had spent them (see README, refunds).
        metrics.add_metric(name="PointsShortfall", unit=MetricUnit.Count, value=result.points_shortfall)


def _retry_after(record: SQSRecord, seconds: int) -> None:
    """Backoff through SQS: the failed record comes back after ``seconds``, not the queue's default."""
    if settings.ingest_queue_url is None:
        return
    try:
        sqs.change_message_visibility(
            QueueUrl=settings.ingest_queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
        )
    except Exception:
        logger.exception("could not set the backoff; the queue's visibility timeout applies")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
