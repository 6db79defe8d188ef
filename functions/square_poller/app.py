"""EventBridge rate(15 minutes): list Square payments since each location's watermark into the raw table."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.backfill import square_poller_from_settings
from pos_gateway.backfill.settings import SquarePollerSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
poller = square_poller_from_settings(SquarePollerSettings.from_env(), boto3.client("sqs"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    logger.append_keys(scheduled_at=EventBridgeEvent(event).time)
    report = poller.poll(time_left_ms=context.get_remaining_time_in_millis)
    metrics.add_metric(name="PolledPaymentsStored", unit=MetricUnit.Count, value=report.stored)
    metrics.add_metric(name="PollFailures", unit=MetricUnit.Count, value=report.failed)
    metrics.add_metric(name="PollTokensExpired", unit=MetricUnit.Count, value=report.token_expired)
    metrics.add_metric(name="PollEnqueueFailures", unit=MetricUnit.Count, value=report.enqueue_failures)
    return report.model_dump(by_alias=True)
