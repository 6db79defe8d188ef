"""EventBridge rate(5 minutes): an incremental RPApos run, and its execution, for every connection
whose sync interval has elapsed."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.rpapos.scheduler import rpapos_scheduler_from_settings
from pos_gateway.settings import RpaposSchedulerSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
scheduler = rpapos_scheduler_from_settings(RpaposSchedulerSettings.from_env(), boto3.client("stepfunctions"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    logger.append_keys(scheduled_at=EventBridgeEvent(event).time)
    report = scheduler.tick()
    metrics.add_metric(name="RpaposRunsStarted", unit=MetricUnit.Count, value=report.started)
    metrics.add_metric(name="RpaposRunStartFailures", unit=MetricUnit.Count, value=report.start_failures)
    return report.model_dump(by_alias=True)
