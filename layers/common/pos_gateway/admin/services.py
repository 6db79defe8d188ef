"""What the admin routes work with, built once per warm container.

The Step Functions client and the RPApos SOAP client are made on first use: most requests need
neither, and the SOAP module (zeep) is never imported by a request that does not call RPApos.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from pos_gateway.admin.session import AdminDatabase
from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.crypto import CredentialCipher, cipher_from_secret
from pos_gateway.db import ConnectionFactory
from pos_gateway.db.connection import DatabaseCredentials
from pos_gateway.rpapos import contract
from pos_gateway.settings import AdminSettings

if TYPE_CHECKING:
    from pos_gateway.rpapos.soap import RpaposSoapClient

DEFAULT_SOAP_ENDPOINT = f"https://{contract.SOAP_HOST}{contract.SOAP_PATH}"


@dataclass(frozen=True, slots=True)
class AdminServices:
    database: AdminDatabase
    cipher: Callable[[], CredentialCipher]
    sqs_client: Any
    ingest_queue_url: str
    dead_letter_queue_url: str
    # RPApos sync runs: the state machine (None: not configured) and its client, made on first use.
    state_machine_arn: str | None
    sfn_client: Callable[[], Any]
    # A SOAP client for the db4 service (registration and validation need no device token).
    rpapos_soap: Callable[[], "RpaposSoapClient"]


def soap_client_factory(endpoint: str, operation_timeout: float) -> Callable[[], "RpaposSoapClient"]:
    """A new SOAP client per call (cheap: the parsed WSDL and zeep's client are cached per process);
    pos_gateway.rpapos.soap is imported on the first call only."""

    def build() -> "RpaposSoapClient":
        from pos_gateway.rpapos.soap import RpaposSoapClient  # here: zeep loads on the first call

        return RpaposSoapClient(endpoint, operation_timeout=operation_timeout)

    return build


def lazy_client(service: str) -> Callable[[], Any]:
    """A boto3 client made on first use, then reused (boto3 clients are thread-safe)."""

    @cache
    def client() -> Any:
        return boto3.client(service)

    return client


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


def admin_services_from_settings(
    settings: AdminSettings, sqs_client: Any, sfn_client: Callable[[], Any] | None = None
) -> AdminServices:
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
        state_machine_arn=settings.state_machine_arn,
        sfn_client=sfn_client or lazy_client("stepfunctions"),
        rpapos_soap=soap_client_factory(
            settings.rpapos_soap_endpoint or DEFAULT_SOAP_ENDPOINT, settings.rpapos_soap_timeout_seconds
        ),
    )
