"""SQS → crediting: each record is one raw event, processed in its own DB transaction.

Failed records are reported back (partial batch failure) and retried by SQS; after
maxReceiveCount they are parked in the dead-letter queue.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.loyalty import crediting_from_settings
from pos_gateway.messages import CreditRequest
from pos_gateway.recovery import failure_log_from_settings
from pos_gateway.settings import CreditingSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)
settings = CreditingSettings.from_env()
crediting = crediting_from_settings(settings)
failures = failure_log_from_settings(settings)


def record_handler(record: SQSRecord) -> None:
    request: CreditRequest | None = None
    try:
        request = CreditRequest.model_validate_json(record.body)
        result = crediting.process(request)
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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
