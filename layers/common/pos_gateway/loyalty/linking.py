"""Customer linking: when a customer becomes a member, their past sales earn, once each.

A transaction kept without a member (no account matched its customer) is claimed by the first
member whose email or mobile matches, and credited by the rule version in force at the sale's
time. Claiming sets the transaction's user once; the earn event is unique per transaction, so
running the link again, or concurrently, credits nothing twice.
"""

from dataclasses import dataclass
from uuid import UUID

from pos_gateway.db import ConnectionFactory, NotFound, queries, tenant_transaction
from pos_gateway.loyalty.earning import credit_member
from pos_gateway.loyalty.repository import CreditingRepository, RecordedTransaction
from pos_gateway.providers.models import CustomerRef, PaymentRecord, Provider

_SQL = queries.load(__file__, "linking.sql")


@dataclass(frozen=True, slots=True)
class LinkResult:
    transactions_claimed: int
    points_earned: int


def link_member(connections: ConnectionFactory, tenant_id: UUID, user_id: UUID) -> LinkResult:
    connection = connections.get()
    with tenant_transaction(connection, tenant_id):
        member = connection.execute(_SQL.member_contact.sql, {"user_id": user_id}).fetchone()
        if member is None:
            raise NotFound(f"user {user_id} not found")
        if member["email"] is None and member["mobile"] is None:
            return LinkResult(0, 0)
        unclaimed = connection.execute(
            _SQL.unclaimed_transactions.sql,
            {"tenant_id": tenant_id, "email": member["email"], "mobile": member["mobile"]},
        ).fetchall()
        repository = CreditingRepository(connection)
        points = 0
        for row in unclaimed:
            connection.execute(_SQL.claim_transaction.sql, {"user_id": user_id, "transaction_id": row["id"]})
            payment = PaymentRecord(
                provider=Provider(row["provider"]),
                merchant_account_id="",
                provider_transaction_id=row["provider_transaction_id"],
                completed=True,
                amount_minor_units=row["amount_minor_units"],
                currency=row["currency"],
                transaction_at=row["transaction_at"],
                customer=CustomerRef.model_validate(row["customer_ref"] or {}),
            )
            claimed = RecordedTransaction(id=row["id"], user_id=user_id, user_status=member["status"])
            points += credit_member(repository, tenant_id, payment, claimed)
    return LinkResult(len(unclaimed), points)
