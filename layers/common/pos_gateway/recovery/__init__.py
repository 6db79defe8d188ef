"""Backfill and recovery: the outbox sweeper, crediting failures noted on raw events, DLQ redrive."""

from typing import Any

from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory
from pos_gateway.recovery.failures import CreditingFailureLog
from pos_gateway.recovery.redrive import redrive
from pos_gateway.recovery.repository import RawEventFailures, StuckEventClaims
from pos_gateway.recovery.sweeper import CreditRequestQueue, OutboxSweeper, SweepPolicy, SweepReport
from pos_gateway.settings import CreditingSettings, DatabaseSettings, SweeperSettings

__all__ = [
    "CreditingFailureLog",
    "OutboxSweeper",
    "SweepReport",
    "failure_log_from_settings",
    "redrive",
    "sweeper_from_settings",
]


def _connections(settings: DatabaseSettings) -> ConnectionFactory:
    return ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds))


def sweeper_from_settings(settings: SweeperSettings, sqs_client: Any) -> OutboxSweeper:
    return OutboxSweeper(
        StuckEventClaims(_connections(settings)),
        CreditRequestQueue(settings.ingest_queue_url, sqs_client),
        SweepPolicy(
            grace_seconds=settings.grace_seconds,
            max_sweeps=settings.max_sweeps,
            batch_size=settings.batch_size,
            max_batches=settings.max_batches,
        ),
    )


def failure_log_from_settings(settings: CreditingSettings) -> CreditingFailureLog:
    """Its connection (the crediting role's) opens lazily, on the first failure to record."""
    return CreditingFailureLog(RawEventFailures(_connections(settings)))
