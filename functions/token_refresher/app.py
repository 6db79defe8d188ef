"""EventBridge rate(1 day): refresh Square OAuth tokens expiring within the window, sealed again."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.backfill import token_refresher_from_settings
from pos_gateway.backfill.settings import TokenRefresherSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
refresher = token_refresher_from_settings(TokenRefresherSettings.from_env())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    logger.append_keys(scheduled_at=EventBridgeEvent(event).time)
    report = refresher.refresh_due(time_left_ms=context.get_remaining_time_in_millis)
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=report.refreshed)
    metrics.add_metric(name="TokenRefreshFailures", unit=MetricUnit.Count, value=report.failed)
    return report.model_dump(by_alias=True)
