"""Demo data for `make run`: two merchants, a few members, one rule each."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from local import seed
from pos_gateway.crypto import CredentialCipher


@dataclass(frozen=True)
class DemoTenant:
    id: UUID
    name: str
    merchant_id: str


BAKERY_RULE: dict[str, Any] = {**seed.DEFAULT_RULE, "conversionRate": 2.0, "roundingPolicy": "round"}


def load(conn: seed.Conn, cipher: CredentialCipher) -> list[DemoTenant]:
    cafe = seed.create_tenant(conn, "Blue Bottle Cafe")
    bakery = seed.create_tenant(conn, "Corner Bakery")
    seed.connect_square_merchant(conn, cafe, "MLBLUEBOTTLE01", cipher)
    seed.connect_square_merchant(conn, bakery, "MLCORNERBAKE02", cipher)
    seed.create_rule(conn, cafe)  # 1 point per dollar, floor, at most 500 a payment
    seed.create_rule(conn, bakery, BAKERY_RULE)  # 2 points per dollar, rounded
    seed.create_user(conn, email="alice@example.com", full_name="Alice Demo")
    seed.create_user(conn, email="bob@example.com", mobile="+14155550123", full_name="Bob Demo")
    seed.create_user(conn, email="carol@example.com", status="suspended", full_name="Carol Demo")
    return [
        DemoTenant(cafe, "Blue Bottle Cafe", "MLBLUEBOTTLE01"),
        DemoTenant(bakery, "Corner Bakery", "MLCORNERBAKE02"),
    ]
