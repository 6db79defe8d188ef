"""Loyalty: reward rules, points crediting, wallets and their append-only ledger."""

from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory
from pos_gateway.loyalty.clover_crediting import clover_crediting_from_settings
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.providers.clover.settings import CloverCreditingSettings


def crediting_from_settings(settings: CloverCreditingSettings) -> CreditingService:
    """Crediting with its real collaborators; the Clover branch when a key ring is configured."""
    return CreditingService(
        ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)),
        clover=clover_crediting_from_settings(settings),
    )
