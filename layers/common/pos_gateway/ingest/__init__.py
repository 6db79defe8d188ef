"""Webhook ingest: verify, store the raw event (deduplicated), enqueue it, answer fast."""

from datetime import timedelta
from typing import Any

from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.db import ConnectionFactory
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.ingest.service import SquareWebhookConfig, SquareWebhookIngest
from pos_gateway.settings import IngestSettings


def square_ingest_from_settings(settings: IngestSettings, sqs_client: Any) -> SquareWebhookIngest:
    """Wire the ingest service to its real collaborators (secrets are cached and re-read)."""
    max_age = timedelta(seconds=settings.square_max_event_age_seconds)

    def config() -> SquareWebhookConfig:
        secret = secret_json(settings.square_webhook_secret_arn, settings.secret_max_age_seconds)
        return SquareWebhookConfig.from_secret(secret, max_age)

    connections = ConnectionFactory(
        database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)
    )
    return SquareWebhookIngest(
        config=config,
        store=RawEventStore(connections),
        queue=IngestQueue(settings.ingest_queue_url, sqs_client),
    )
