"""EventBridge rate(5 minutes): members whose email or mobile matches unclaimed sales claim them."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.loyalty.linker import linker_from_settings
from pos_gateway.settings import LinkerSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
linker = linker_from_settings(LinkerSettings.from_env())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The scheduled event carries nothing to act on; its time ties the logs to the run.
    logger.append_keys(scheduled_at=EventBridgeEvent(event).time)
    report = linker.run(time_left_ms=context.get_remaining_time_in_millis)
    metrics.add_metric(name="PairsLinked", unit=MetricUnit.Count, value=report.pairs_linked)
    metrics.add_metric(name="TransactionsClaimed", unit=MetricUnit.Count, value=report.transactions_claimed)
    metrics.add_metric(name="PointsCredited", unit=MetricUnit.Count, value=report.points_credited)
    metrics.add_metric(name="LinkFailures", unit=MetricUnit.Count, value=report.failures)
    return report.model_dump(by_alias=True)
