"""SQL access for crediting; every call runs inside the caller's tenant transaction."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.idempotency import OnceRunner, OnceSpec, ProviderKeyRunners
from pos_gateway.loyalty.rulebook import RuleVersion
from pos_gateway.loyalty.rules import RuleConfig
from pos_gateway.providers.models import PaymentRecord, RefundRecord

_SQL = queries.load(__file__)


@dataclass(frozen=True, slots=True)
class RawEvent:
    id: UUID
    tenant_id: UUID
    provider: str
    event_type: str
    raw_payload: dict[str, Any]
    processed: bool


@dataclass(frozen=True, slots=True)
class RecordedTransaction:
    id: UUID
    user_id: UUID | None
    user_status: str | None


@dataclass(frozen=True, slots=True)
class Wallet:
    id: UUID
    status: str


@dataclass(frozen=True, slots=True)
class LockedTransaction:
    id: UUID
    user_id: UUID | None
    amount_minor_units: int


@dataclass(frozen=True, slots=True)
class ReversalBasis:
    """What a refund is measured against (the refund itself already counted in refunded_total)."""

    wallet_id: UUID
    points_earned: int
    rule_version_id: UUID | None
    rule_config: RuleConfig | None
    refunded_total: int
    already_reversed: int


@cache
def _provider_keys() -> ProviderKeyRunners:
    """Powertools' runners for provider keys: built once per container, shared by every request."""
    return ProviderKeyRunners()


class CreditingRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @contextmanager
    def provider_key[T: BaseModel](
        self, spec: OnceSpec, handler: str, result_type: type[T], tenant_id: UUID
    ) -> Iterator[OnceRunner[T]]:
        """Powertools' runner for a provider key, serving requests inside this transaction."""
        runner = _provider_keys().runner(spec, handler, result_type)
        with runner.in_transaction(self._connection, tenant_id):
            yield runner

    def lock_raw_event(self, raw_event_id: UUID) -> RawEvent | None:
        row = self._connection.execute(_SQL.lock_raw_event.sql, {"raw_event_id": raw_event_id}).fetchone()
        return RawEvent(**row) if row else None

    def mark_processed(self, raw_event_id: UUID, outcome: str) -> None:
        self._connection.execute(
            _SQL.mark_raw_event_processed.sql, {"raw_event_id": raw_event_id, "outcome": outcome}
        )

    def insert_transaction(
        self, tenant_id: UUID, payment: PaymentRecord, raw_event_id: UUID
    ) -> RecordedTransaction | None:
        """Insert the transaction, linked to the member it matches; None if already recorded."""
        row = self._connection.execute(
            _SQL.insert_transaction.sql,
            {
                "tenant_id": tenant_id,
                "provider": payment.provider.value,
                "provider_transaction_id": payment.provider_transaction_id,
                "amount_minor_units": payment.amount_minor_units,
                "currency": payment.currency,
                "customer_ref": Jsonb(payment.customer.model_dump(by_alias=True, exclude_none=True)),
                "transaction_at": payment.transaction_at,
                "raw_event_id": raw_event_id,
                "email": payment.customer.email,
                "mobile": payment.customer.mobile,
            },
        ).fetchone()
        return RecordedTransaction(**row) if row else None

    def wallet_and_rule(
        self, tenant_id: UUID, user_id: UUID, at: datetime
    ) -> tuple[Wallet, RuleVersion | None]:
        """The member's wallet (created on first credit) and the rule version in force at ``at``."""
        params = {"tenant_id": tenant_id, "user_id": user_id, "at": at}
        row = self._connection.execute(_SQL.wallet_and_rule.sql, params).fetchone()
        if row is None:
            raise LookupError("wallet_and_rule returns one row")
        rule = (
            RuleVersion(row["rule_id"], row["rule_version"], RuleConfig.model_validate(row["rule_config"]))
            if row["rule_id"] is not None
            else None
        )
        if row["wallet_id"] is not None:
            return Wallet(row["wallet_id"], row["wallet_status"]), rule
        return self._create_wallet(params), rule

    def _create_wallet(self, params: dict[str, Any]) -> Wallet:
        row = (
            self._connection.execute(_SQL.ensure_wallet.sql, params).fetchone()
            # Created by a concurrent worker that has committed since: visible to a new statement.
            or self._connection.execute(_SQL.find_wallet.sql, params).fetchone()
        )
        if row is None:
            raise LookupError(
                f"wallet of user {params['user_id']} not visible in tenant {params['tenant_id']}"
            )
        return Wallet(**row)

    def insert_earn_event(
        self,
        *,
        tenant_id: UUID,
        wallet_id: UUID,
        transaction_id: UUID,
        rule_id: UUID | None,
        outcome: str,
        points: int,
        description: str,
    ) -> None:
        self._connection.execute(
            _SQL.insert_earn_event.sql,
            {
                "tenant_id": tenant_id,
                "wallet_id": wallet_id,
                "transaction_id": transaction_id,
                "rule_id": rule_id,
                "outcome": outcome,
                "points": points,
                "description": description,
            },
        )

    def lock_transaction(
        self, tenant_id: UUID, provider: str, provider_transaction_id: str
    ) -> LockedTransaction | None:
        row = self._connection.execute(
            _SQL.lock_transaction.sql,
            {
                "tenant_id": tenant_id,
                "provider": provider,
                "provider_transaction_id": provider_transaction_id,
            },
        ).fetchone()
        return LockedTransaction(**row) if row else None

    def insert_refund(
        self, tenant_id: UUID, transaction_id: UUID, refund: RefundRecord, raw_event_id: UUID
    ) -> UUID | None:
        """Record the refund; None when this provider refund was recorded before."""
        row = self._connection.execute(
            _SQL.insert_refund.sql,
            {
                "tenant_id": tenant_id,
                "transaction_id": transaction_id,
                "provider": refund.provider.value,
                "provider_refund_id": refund.provider_refund_id,
                "amount_minor_units": refund.amount_minor_units,
                "currency": refund.currency,
                "refunded_at": refund.refunded_at,
                "raw_event_id": raw_event_id,
            },
        ).fetchone()
        return row["id"] if row else None

    def reversal_basis(self, transaction_id: UUID) -> ReversalBasis | None:
        """None when the transaction has no earn event (no member matched it)."""
        row = self._connection.execute(_SQL.reversal_basis.sql, {"transaction_id": transaction_id}).fetchone()
        if row is None:
            return None
        config = row.pop("rule_config")
        return ReversalBasis(**row, rule_config=RuleConfig.model_validate(config) if config else None)

    def lock_wallet_balance(self, wallet_id: UUID) -> int:
        row = self._connection.execute(_SQL.lock_wallet_balance.sql, {"wallet_id": wallet_id}).fetchone()
        if row is None:
            raise LookupError(f"wallet {wallet_id} not visible")
        return int(row["points_balance"])

    def insert_reversal_event(
        self,
        *,
        tenant_id: UUID,
        wallet_id: UUID,
        transaction_id: UUID,
        rule_id: UUID | None,
        refund_id: UUID,
        outcome: str,
        points: int,
        shortfall: int,
        description: str,
    ) -> None:
        self._connection.execute(
            _SQL.insert_reversal_event.sql,
            {
                "tenant_id": tenant_id,
                "wallet_id": wallet_id,
                "transaction_id": transaction_id,
                "rule_id": rule_id,
                "refund_id": refund_id,
                "outcome": outcome,
                "points": points,
                "shortfall": shortfall,
                "description": description,
            },
        )
