"""Wallet API for POS operators: POST /wallets/{walletId}/redemptions, behind the JWT authorizer.

``cleanup_handler`` is the scheduled deletion of expired idempotency keys (same role and code).
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from pos_gateway.auth import principal_from_event
from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory
from pos_gateway.http import error_response, json_response, raw_body, register_error_responses
from pos_gateway.idempotency import delete_expired
from pos_gateway.loyalty.redemption import RedemptionService, parse_redemption
from pos_gateway.settings import DatabaseSettings

logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver()
register_error_responses(app, logger, metrics)
settings = DatabaseSettings.from_env()
connections = ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds))
redemptions = RedemptionService(connections)


@app.post("/wallets/<wallet_id>/redemptions")
def create_redemption(wallet_id: str) -> Response[str]:
    event = app.current_event
    principal = principal_from_event(event)
    request = parse_redemption(wallet_id, raw_body(event.body, bool(event.is_base64_encoded)))
    once = redemptions.redeem(principal, request, app.lambda_context)
    metrics.add_metric(
        name="RedemptionReplayed" if once.replayed else "Redeemed", unit=MetricUnit.Count, value=1
    )
    if not once.replayed:
        metrics.add_metric(name="PointsRedeemed", unit=MetricUnit.Count, value=once.value.points_redeemed)
    response = json_response(201, once.value)
    response.headers["idempotent-replayed"] = "true" if once.replayed else "false"
    return response


@app.exception_handler(IdempotencyValidationError)
def key_reused(error: IdempotencyValidationError) -> Response[str]:
    metrics.add_metric(name="Refused_idempotency_key_reused", unit=MetricUnit.Count, value=1)
    return error_response(409, "idempotency_key_reused", "this idempotencyKey was used for another request")


@app.exception_handler(IdempotencyAlreadyInProgressError)
def key_in_progress(error: IdempotencyAlreadyInProgressError) -> Response[str]:
    metrics.add_metric(name="Refused_idempotency_request_in_progress", unit=MetricUnit.Count, value=1)
    return error_response(409, "idempotency_request_in_progress", "a request with this key is in progress")


@app.exception_handler(IdempotencyPersistenceLayerError)
def unavailable(error: Exception) -> Response[str]:
    # Nothing was committed: the same request (same key) can be sent again.
    logger.exception("database unavailable")
    metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=1)
    return error_response(503, "temporarily_unavailable", "try again later")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def cleanup_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    logger.append_keys(scheduled_at=EventBridgeEvent(event).time)
    deleted = delete_expired(connections.get())
    metrics.add_metric(name="ExpiredIdempotencyKeysDeleted", unit=MetricUnit.Count, value=deleted)
    return {"deleted": deleted}
