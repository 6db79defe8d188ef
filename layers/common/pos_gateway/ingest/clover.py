"""Clover webhook ingest: the verification POST, then authenticated deliveries of many updates.

A delivery is checked against the configured X-Clover-Auth code (nothing is written without
it), split into one raw event per merchant update (deduplicated on merchant + object + type +
ts), routed to tenants like Square's (unknown merchants quarantined), stored in one transaction
and each new event enqueued; an enqueue failure leaves the row to the outbox sweeper.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, ValidationError

from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.http import validation_fields
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.service import MalformedEvent, WebhookRejected
from pos_gateway.json_documents import UnstorableJson, load_storable
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.clover.settings import CloverWebhookSettings
from pos_gateway.providers.clover.webhook import (
    CloverNotification,
    CloverVerification,
    MerchantUpdate,
    is_valid_auth_code,
)
from pos_gateway.providers.models import Provider

logger = Logger(child=True)
_SQL = queries.load(__file__, "clover.sql")


class InvalidAuthCode(WebhookRejected):
    status_code = 401
    code = "invalid_auth_code"


class UnknownApp(WebhookRejected):
    status_code = 401
    code = "unknown_app"


@dataclass(frozen=True, slots=True)
class CloverWebhookConfig:
    auth_code: str = field(repr=False)
    app_id: str | None = None  # when set, deliveries for another app are refused

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> "CloverWebhookConfig":
        app_id = secret.get("appId")
        return cls(auth_code=str(secret.get("authCode") or ""), app_id=str(app_id) if app_id else None)


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    update: MerchantUpdate
    raw_event_id: UUID | None  # None: this update was stored before (a redelivery)
    tenant_id: UUID | None  # None: the merchant is not connected (quarantined)


class CloverEventStore:
    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def store(self, updates: list[MerchantUpdate], raw_body: str) -> list[StoredUpdate]:
        """Route and append every update in one transaction and one round trip."""
        connection = self._connections.get()
        routes: dict[str, Cursor[DictRow]] = {}
        inserts: list[tuple[MerchantUpdate, Cursor[DictRow]]] = []
        routed: str | None = None
        with tenant_transaction(connection, None, pipeline=True):
            for update in updates:
                if update.merchant_id != routed:  # each insert goes to the tenant routed last
                    routed = update.merchant_id
                    routes[routed] = connection.execute(
                        _SQL.route_merchant.sql, {"merchant_account_id": routed}
                    )
                inserts.append(
                    (update, connection.execute(_SQL.insert_update.sql, _params(update, raw_body)))
                )
            # Reading the results ends the pipeline's single round trip.
            tenants = {merchant: _routed_tenant(cursor) for merchant, cursor in routes.items()}
            inserted = [(update, cursor.fetchone()) for update, cursor in inserts]
        return [
            StoredUpdate(update, row["id"] if row else None, tenants[update.merchant_id])
            for update, row in inserted
        ]

    def store_verification(self, code: str) -> None:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            connection.execute(_SQL.insert_verification_code.sql, {"verification_code": code})


def _routed_tenant(cursor: Cursor[DictRow]) -> UUID | None:
    row = cursor.fetchone()
    return row["tenant_id"] if row else None


def _params(update: MerchantUpdate, raw_body: str) -> dict[str, Any]:
    return {
        "event_type": update.event_type,
        "provider_event_id": update.provider_event_id,
        "merchant_account_id": update.merchant_id,
        "raw_payload": Jsonb(update.to_payload()),
        "raw_body": raw_body,
    }


@dataclass(frozen=True, slots=True)
class CloverIngestResult:
    verification: bool = False
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    enqueue_failures: int = 0
    raw_event_ids: tuple[UUID, ...] = ()


class CloverWebhookAck(BaseModel):
    """The 200 answer: what became of the delivery's updates."""

    model_config = ConfigDict(populate_by_name=True)

    status: Literal["accepted", "verification_received"]
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0

    @classmethod
    def of(cls, result: CloverIngestResult) -> "CloverWebhookAck":
        if result.verification:
            return cls(status="verification_received")
        return cls(
            status="accepted",
            received=result.received,
            accepted=result.accepted,
            duplicates=result.duplicates,
            quarantined=result.quarantined,
        )


class CloverWebhookIngest:
    def __init__(
        self, config: Callable[[], CloverWebhookConfig], store: CloverEventStore, queue: IngestQueue
    ) -> None:
        self._config = config
        self._store = store
        self._queue = queue

    def receive(self, body: bytes, auth_code: str | None) -> CloverIngestResult:
        document = _document(body)
        verification = _verification(document)
        if verification is not None:
            # Clover sends it before any auth code exists; the operator pastes it into Clover.
            self._store.store_verification(verification.verification_code)
            logger.warning(
                "Clover webhook verification code received; enter it in the Clover dashboard",
                extra={"verification_code": verification.verification_code},
            )
            return CloverIngestResult(verification=True)
        config = self._config()
        if not is_valid_auth_code(config.auth_code, auth_code):
            raise InvalidAuthCode("missing or invalid X-Clover-Auth")
        notification = _notification(document)
        if config.app_id is not None and notification.app_id != config.app_id:
            raise UnknownApp("the delivery is for another Clover app")
        updates = notification.updates()
        stored = self._store.store(updates, body.decode("utf-8")) if updates else []
        return self._enqueue_all(stored)

    def _enqueue_all(self, stored: list[StoredUpdate]) -> CloverIngestResult:
        accepted = quarantined = failures = 0
        for item in stored:
            if item.raw_event_id is None:
                continue
            if item.tenant_id is None:
                quarantined += 1
                logger.warning(
                    "quarantined event of an unknown merchant",
                    extra={"merchant_id": item.update.merchant_id, "raw_event_id": str(item.raw_event_id)},
                )
                continue
            accepted += 1
            request = CreditRequest(
                raw_event_id=item.raw_event_id, tenant_id=item.tenant_id, provider=Provider.CLOVER
            )
            failures += not self._enqueue(request)
        return CloverIngestResult(
            received=len(stored),
            accepted=accepted,
            duplicates=sum(item.raw_event_id is None for item in stored),
            quarantined=quarantined,
            enqueue_failures=failures,
            raw_event_ids=tuple(item.raw_event_id for item in stored if item.raw_event_id),
        )

    def _enqueue(self, request: CreditRequest) -> bool:
        return self._queue.enqueue_or_leave(request)


def _document(body: bytes) -> Any:
    try:
        return load_storable(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedEvent("body is not UTF-8") from exc
    except UnstorableJson as exc:
        raise MalformedEvent(str(exc)) from exc


def _verification(document: Any) -> CloverVerification | None:
    if not isinstance(document, dict) or "verificationCode" not in document:
        return None
    try:
        return CloverVerification.model_validate(document)
    except ValidationError as exc:
        raise MalformedEvent("body is not a valid Clover verification", validation_fields(exc)) from exc


def _notification(document: Any) -> CloverNotification:
    try:
        return CloverNotification.model_validate(document)
    except ValidationError as exc:
        raise MalformedEvent("body is not a valid Clover webhook message", validation_fields(exc)) from exc


def clover_ingest_from_settings(settings: CloverWebhookSettings, sqs_client: Any) -> CloverWebhookIngest:
    """Wire the service to its real collaborators (the secret is cached and re-read)."""

    def config() -> CloverWebhookConfig:
        return CloverWebhookConfig.from_secret(
            secret_json(settings.clover_webhook_secret_arn, settings.secret_max_age_seconds)
        )

    connections = ConnectionFactory(
        database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)
    )
    return CloverWebhookIngest(
        config, CloverEventStore(connections), IngestQueue(settings.ingest_queue_url, sqs_client)
    )
