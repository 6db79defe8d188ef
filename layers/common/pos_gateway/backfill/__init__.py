"""Backfill from Square: payments polling with per-location watermarks, and OAuth token refresh."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.backfill.poller import PollPolicy, PollReport, SquarePoller
from pos_gateway.backfill.refresher import OAuthClient, RefreshPolicy, RefreshReport, TokenRefresher
from pos_gateway.backfill.repository import PollerStore, TokenStore
from pos_gateway.backfill.settings import (
    EncryptionSettings,
    SquareApiSettings,
    SquarePollerSettings,
    TokenRefresherSettings,
)
from pos_gateway.crypto import CredentialCipher, cipher_from_secret
from pos_gateway.db import ConnectionFactory
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.providers.square.api import SquareApi
from pos_gateway.settings import DatabaseSettings

__all__ = [
    "PollReport",
    "RefreshReport",
    "SquarePoller",
    "TokenRefresher",
    "square_api_from_settings",
    "square_poller_from_settings",
    "token_refresher_from_settings",
]


def square_api_from_settings(settings: SquareApiSettings) -> SquareApi:
    return SquareApi(
        settings.square_api_base_url,
        version=settings.square_api_version,
        connect_timeout=settings.square_connect_timeout_seconds,
        read_timeout=settings.square_read_timeout_seconds,
    )


def _connections(settings: DatabaseSettings) -> ConnectionFactory:
    return ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds))


def _cipher(settings: EncryptionSettings, max_age: int) -> Callable[[], CredentialCipher]:
    def load() -> CredentialCipher:
        # Cached for max_age seconds, so an added key is picked up by warm containers.
        return cipher_from_secret(secret_json(settings.encryption_keys_secret_arn, max_age))

    return load


def square_poller_from_settings(settings: SquarePollerSettings, sqs_client: Any) -> SquarePoller:
    return SquarePoller(
        PollerStore(_connections(settings)),
        square_api_from_settings(settings),
        _cipher(settings, settings.secret_max_age_seconds),
        IngestQueue(settings.ingest_queue_url, sqs_client),
        PollPolicy(
            overlap=timedelta(seconds=settings.overlap_seconds),
            first_lookback=timedelta(seconds=settings.first_lookback_seconds),
            max_connections=settings.max_connections,
            max_pages_per_location=settings.max_pages_per_location,
            page_size=settings.page_size,
            reserve_milliseconds=settings.reserve_milliseconds,
        ),
    )


def token_refresher_from_settings(settings: TokenRefresherSettings) -> TokenRefresher:
    def oauth() -> OAuthClient:
        return OAuthClient.from_secret(
            secret_json(settings.square_oauth_secret_arn, settings.secret_max_age_seconds)
        )

    return TokenRefresher(
        TokenStore(_connections(settings)),
        square_api_from_settings(settings),
        _cipher(settings, settings.secret_max_age_seconds),
        oauth,
        RefreshPolicy(
            window=timedelta(days=settings.refresh_window_days),
            max_connections=settings.max_connections,
            reserve_milliseconds=settings.reserve_milliseconds,
        ),
    )
