"""What the admin routes work with, built once per warm container."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from pos_gateway.admin.session import AdminDatabase
from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.crypto import CredentialCipher, cipher_from_secret
from pos_gateway.db import ConnectionFactory
from pos_gateway.db.connection import DatabaseCredentials
from pos_gateway.settings import AdminSettings


@dataclass(frozen=True, slots=True)
class AdminServices:
    database: AdminDatabase
    cipher: Callable[[], CredentialCipher]
    sqs_client: Any
    ingest_queue_url: str
    dead_letter_queue_url: str


def replica_credentials(
    primary: Callable[[], DatabaseCredentials], read_url: str
) -> Callable[[], DatabaseCredentials]:
    """The replica's address from the URL, the login from the primary's secret unless the URL has one."""
    parts = {key: str(value) for key, value in conninfo_to_dict(read_url).items() if value is not None}

    def load() -> DatabaseCredentials:
        base = primary()
        return base.model_copy(
            update={
                "host": parts.get("host", base.host),
                "port": int(parts.get("port", base.port)),
                "dbname": parts.get("dbname", base.dbname),
                "username": parts.get("user", base.username),
                **({"password": SecretStr(parts["password"])} if "password" in parts else {}),
            }
        )

    return load


def admin_services_from_settings(settings: AdminSettings, sqs_client: Any) -> AdminServices:
    primary = database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)
    replica = (
        ConnectionFactory(replica_credentials(primary, settings.database_read_url))
        if settings.database_read_url
        else None
    )

    def cipher() -> CredentialCipher:
        return cipher_from_secret(
            secret_json(settings.encryption_keys_secret_arn, settings.secret_max_age_seconds)
        )

    return AdminServices(
        database=AdminDatabase(ConnectionFactory(primary), replica),
        cipher=cipher,
        sqs_client=sqs_client,
        ingest_queue_url=settings.ingest_queue_url,
        dead_letter_queue_url=settings.dead_letter_queue_url,
    )
