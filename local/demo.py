"""Demo data for `make run`: three merchants (two on Square, one on Clover), members, staff, rules."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from local import seed
from local.fake_clover import clover_payment, connect_clover_merchant
from pos_gateway.crypto import CredentialCipher


@dataclass(frozen=True)
class DemoTenant:
    id: UUID
    name: str
    provider: str
    merchant_id: str
    clover_token: str | None = None  # Clover connections: the token the fake Clover accepts


@dataclass(frozen=True)
class Demo:
    tenants: list[DemoTenant]
    operator_id: UUID  # a pos_operator of Blue Bottle Cafe
    admin_id: UUID  # a platform admin
    client_id: UUID  # a client (the merchant's own admin) of Blue Bottle Cafe

    def tenant(self, name: str) -> DemoTenant:
        return next(t for t in self.tenants if t.name == name)


BAKERY_RULE: dict[str, Any] = {**seed.DEFAULT_RULE, "conversionRate": 2.0, "roundingPolicy": "round"}
CLOVER_MERCHANT = "MCLOVERDEMO01"
# The sale the Clover demo notification names (served by the fake Clover): 42.00 by Bob.
CLOVER_PAYMENT = clover_payment(
    "PAYDEMO000001",
    amount=4200,
    email="bob@example.com",
    created_at=datetime(2026, 11, 20, 15, 4, tzinfo=UTC),
)


def load(conn: seed.Conn, cipher: CredentialCipher) -> Demo:
    cafe = seed.create_tenant(conn, "Blue Bottle Cafe")
    bakery = seed.create_tenant(conn, "Corner Bakery")
    deli = seed.create_tenant(conn, "Harbor Deli")
    seed.connect_square_merchant(conn, cafe, "MLBLUEBOTTLE01", cipher)
    seed.connect_square_merchant(conn, bakery, "MLCORNERBAKE02", cipher)
    _, clover_token = connect_clover_merchant(conn, deli, CLOVER_MERCHANT, cipher)
    seed.create_rule(conn, cafe)  # 1 point per dollar, floor, at most 500 a payment
    seed.create_rule(conn, bakery, BAKERY_RULE)  # 2 points per dollar, rounded
    seed.create_rule(conn, deli)
    seed.create_user(conn, email="alice@example.com", full_name="Alice Demo")
    seed.create_user(conn, email="bob@example.com", mobile="+14155550123", full_name="Bob Demo")
    seed.create_user(conn, email="carol@example.com", status="suspended", full_name="Carol Demo")
    operator = seed.create_user(
        conn, email="olivia@bluebottle.example", role="pos_operator", full_name="Olivia"
    )
    seed.add_member(conn, cafe, operator, "pos_operator")
    admin = seed.create_user(conn, email="adam@pos-gateway.example", role="admin", full_name="Adam Admin")
    client = seed.create_user(conn, email="cleo@bluebottle.example", role="client", full_name="Cleo Owner")
    seed.add_member(conn, cafe, client, "client")
    return Demo(
        tenants=[
            DemoTenant(cafe, "Blue Bottle Cafe", "square", "MLBLUEBOTTLE01"),
            DemoTenant(bakery, "Corner Bakery", "square", "MLCORNERBAKE02"),
            DemoTenant(deli, "Harbor Deli", "clover", CLOVER_MERCHANT, clover_token),
        ],
        operator_id=operator,
        admin_id=admin,
        client_id=client,
    )
