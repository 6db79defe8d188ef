"""Configuration held in Secrets Manager, cached per warm container (Powertools parameters)."""

from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.utilities import parameters

from pos_gateway.db.connection import DatabaseCredentials


def secret_json(secret_arn: str, max_age: int) -> dict[str, Any]:
    return cast(dict[str, Any], parameters.get_secret(secret_arn, transform="json", max_age=max_age))


def database_credentials(secret_arn: str, max_age: int) -> Callable[[], DatabaseCredentials]:
    """Credentials re-read at most every ``max_age`` seconds, so a rotation is picked up."""

    def load() -> DatabaseCredentials:
        return DatabaseCredentials.model_validate(secret_json(secret_arn, max_age))

    return load
