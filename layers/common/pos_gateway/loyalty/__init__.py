"""Loyalty: reward rules, points crediting, wallets and their append-only ledger."""

from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.settings import CreditingSettings


def crediting_from_settings(settings: CreditingSettings) -> CreditingService:
    return CreditingService(
        ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds))
    )
