"""EventBridge rate(1 minute): re-enqueue raw events stuck unprocessed, park those swept too often."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.recovery import sweeper_from_settings
from pos_gateway.settings import SweeperSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
sweeper = sweeper_from_settings(SweeperSettings.from_env(), boto3.client("sqs"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The scheduled event carries nothing to act on; its time ties the logs to the run.
    logger.append_keys(scheduled_at=event.get("time"))
    report = sweeper.sweep()
    metrics.add_metric(name="SweptEvents", unit=MetricUnit.Count, value=report.requeued)
    metrics.add_metric(name="ParkedEvents", unit=MetricUnit.Count, value=report.parked)
    metrics.add_metric(name="SweepEnqueueFailures", unit=MetricUnit.Count, value=report.enqueue_failures)
    return report.model_dump(by_alias=True)
