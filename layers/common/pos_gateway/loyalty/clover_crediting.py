"""Crediting's Clover branch: a stored payment update → the payment from Clover → points.

Runs inside the crediting transaction, with the raw event locked and not yet processed. Clover
updates carry no data: the payment is fetched with the merchant's own token, then earned like
any provider's (only SUCCESS earns) and each of its completed refunds reversed; both are
idempotent, so a redelivered or repeated update changes nothing. Failures raise, and the
transaction rolls back with nothing written: ProviderBusy (429, 5xx, timeout) says when to try
again; a refused token (401) also marks the connection token_expired, in its own transaction.
Clover lengthens the wait of a client that calls before Retry-After has passed, so the warm
container remembers the backoff and refuses early calls itself (per merchant for a 429, for
every merchant when Clover is unavailable).
"""

import math
import time
from collections.abc import Callable
from uuid import UUID

from aws_lambda_powertools import Logger

from pos_gateway.aws_secrets import database_credentials, secret_json
from pos_gateway.crypto import CredentialCipher, cipher_from_secret
from pos_gateway.db import ConnectionFactory
from pos_gateway.db.connection import Connection
from pos_gateway.loyalty.earning import earn
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.loyalty.repository import CreditingRepository, RawEvent
from pos_gateway.loyalty.reversal import reverse
from pos_gateway.providers.clover.client import CloverClient
from pos_gateway.providers.clover.errors import CloverConnectionUnusable, CloverUnauthorized, ProviderBusy
from pos_gateway.providers.clover.payments import CloverPayment, payment_record, refund_records
from pos_gateway.providers.clover.repository import ConnectionStatus, find_connection
from pos_gateway.providers.clover.settings import CloverCreditingSettings
from pos_gateway.providers.clover.webhook import MerchantUpdate

logger = Logger(child=True)


class CloverCrediting:
    def __init__(
        self,
        client: CloverClient,
        cipher: Callable[[], CredentialCipher],
        status: ConnectionStatus,
        *,
        default_currency: str = "USD",
        default_country_code: str = "1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cipher = cipher
        self._status = status
        self._default_currency = default_currency
        self._default_country_code = default_country_code
        self._clock = clock
        # Monotonic deadlines before which Clover is not called: per merchant id, or None for all.
        self._busy_until: dict[str | None, float] = {}

    def apply(self, connection: Connection, raw: RawEvent) -> ProcessingResult:
        """The effect of one stored Clover update, written through ``connection``'s transaction."""
        update = MerchantUpdate.from_payload(raw.raw_payload)
        if not update.is_payment_change:
            return ProcessingResult(raw.id, ProcessingOutcome.IGNORED_EVENT_TYPE)
        payment = self._fetch_payment(connection, raw.tenant_id, update)
        return self._credit(CreditingRepository(connection), raw, update.merchant_id, payment)

    def _fetch_payment(
        self, connection: Connection, tenant_id: UUID, update: MerchantUpdate
    ) -> CloverPayment:
        found = find_connection(connection, update.merchant_id)
        if found is None or not found.usable:
            state = found.status if found else "missing"
            raise CloverConnectionUnusable(f"Clover connection of merchant {update.merchant_id} is {state}")
        self._respect_backoff(update.merchant_id)
        token = found.access_token(self._cipher())
        try:
            return self._client.get_payment(update.merchant_id, update.update.bare_id, token)
        except ProviderBusy as busy:
            scope = update.merchant_id if busy.rate_limited else None
            self._busy_until[scope] = self._clock() + busy.retry_after_seconds
            raise
        except CloverUnauthorized as error:
            self._mark_token_expired(tenant_id, found.id, error)
            raise

    def _respect_backoff(self, merchant_id: str) -> None:
        now = self._clock()
        for scope in (merchant_id, None):
            until = self._busy_until.get(scope, 0.0)
            if until > now:
                who = f"merchant {merchant_id}" if scope else "every merchant"
                raise ProviderBusy(f"Clover asked to wait for {who}", math.ceil(until - now))
            self._busy_until.pop(scope, None)

    def _mark_token_expired(self, tenant_id: UUID, connection_id: UUID, error: CloverUnauthorized) -> None:
        extra = {"connection_id": str(connection_id)}
        try:
            self._status.mark_token_expired(tenant_id, connection_id, str(error))
        except Exception:
            # The 401 is raised anyway: the message is retried, then parked.
            logger.exception("Clover refused the access token; marking the connection failed", extra=extra)
            return
        logger.warning("Clover refused the access token; connection marked token_expired", extra=extra)

    def _credit(
        self, repository: CreditingRepository, raw: RawEvent, merchant_id: str, payment: CloverPayment
    ) -> ProcessingResult:
        record = payment_record(
            merchant_id,
            payment,
            default_currency=self._default_currency,
            default_country_code=self._default_country_code,
        )
        earned = earn(repository, raw.tenant_id, raw.id, record)
        if not record.completed:
            return earned
        reversals = [
            reverse(repository, raw.tenant_id, raw.id, refund)
            for refund in refund_records(merchant_id, payment, default_currency=self._default_currency)
            if refund.completed
        ]
        return combined(earned, reversals)


def combined(earned: ProcessingResult, reversals: list[ProcessingResult]) -> ProcessingResult:
    """One result for the raw event: the earn's outcome, unless only refunds were new."""
    fresh = [r for r in reversals if r.outcome is not ProcessingOutcome.DUPLICATE_REFUND]
    outcome = earned.outcome
    if fresh and outcome is ProcessingOutcome.DUPLICATE_TRANSACTION:
        reversed_any = any(r.outcome is ProcessingOutcome.REVERSED for r in fresh)
        outcome = ProcessingOutcome.REVERSED if reversed_any else fresh[-1].outcome
    transaction_id = earned.transaction_id or next((r.transaction_id for r in reversals), None)
    return ProcessingResult(
        earned.raw_event_id,
        outcome,
        transaction_id=transaction_id,
        points_earned=earned.points_earned,
        points_reversed=sum(r.points_reversed for r in reversals),
        points_shortfall=sum(r.points_shortfall for r in reversals),
    )


def clover_crediting_from_settings(settings: CloverCreditingSettings) -> CloverCrediting | None:
    """Wire the Clover branch: the REST client, the key ring (cached, re-read) and a lazily
    opened connection (crediting's role) for marking refused tokens. None without a key ring."""
    key_ring = settings.encryption_keys_secret_arn
    if key_ring is None:
        return None

    def cipher() -> CredentialCipher:
        return cipher_from_secret(secret_json(key_ring, settings.secret_max_age_seconds))

    return CloverCrediting(
        CloverClient(
            settings.clover_api_base_url,
            connect_timeout=settings.clover_connect_timeout_seconds,
            read_timeout=settings.clover_read_timeout_seconds,
        ),
        cipher,
        ConnectionStatus(
            ConnectionFactory(database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds))
        ),
        default_currency=settings.clover_default_currency,
    )
