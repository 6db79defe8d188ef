"""Demo data for `make run`: three merchants (two on Square, one on Clover), members, staff, rules;
and, once the stack serves, a restaurant group moving off RPApos (``connect_rpapos``)."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import requests

from local import seed
from local.fake_clover import clover_payment, connect_clover_merchant
from local.fake_rpapos import Volume
from pos_gateway.admin.rpapos import SEALED_COLUMNS
from pos_gateway.admin.rpapos import TABLE as RPAPOS_CONNECTION_TABLE
from pos_gateway.crypto import CredentialCipher

if TYPE_CHECKING:
    from local.stack import LocalStack


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


# ---------------------------------------------------------------- RPApos

RPAPOS_TENANT = "Casa Antigua"  # a restaurant group moving off RPApos
RPAPOS_SUBDOMAIN = "casa-antigua"
RPAPOS_USER = "admin"
RPAPOS_WORKSTATION = 1
# Modest: a demo catalog sync takes seconds (one page per entity at the template's page size).
RPAPOS_VOLUME = Volume(plus=200, skus=60, personas=20, batches=12, modifier_groups=6)


@dataclass(frozen=True)
class RpaposDemo:
    """The demo's RPApos connection, as `.local/stack.json` names it (``rpapos``)."""

    tenant_id: UUID
    tenant_name: str
    connection_id: UUID
    subdomain: str
    base_url: str  # the fake tenant's REST base (https://{subdomain}.2rpa.com in the cloud)
    soap_url: str
    volume: Volume

    def describe(self) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "tenant_name": self.tenant_name,
            "connection_id": str(self.connection_id),
            "subdomain": self.subdomain,
            "fake_rpapos_tenant_url": self.base_url,
            "fake_rpapos_soap_url": self.soap_url,
        }


def connect_rpapos(
    stack: "LocalStack",
    *,
    volume: Volume = RPAPOS_VOLUME,
    name: str = RPAPOS_TENANT,
    subdomain: str = RPAPOS_SUBDOMAIN,
) -> RpaposDemo:
    """A tenant on RPApos, once the stack serves: a fake RPApos tenant of ``volume``, its
    connection row (the password sealed as the admin API seals it: bound to the table, column
    and row id), and the SAT device registered through the admin API as a platform admin
    would (POST …/device: the SOAP token is sealed by the API). No schedule
    (``sync_interval_minutes`` NULL): runs start when asked (`make sync`).

    The description is added to the stack file (``rpapos``)."""
    admin_token = stack.admin_token()
    if admin_token is None:
        raise RuntimeError("the RPApos demo needs the demo data (a platform admin)")
    password = secrets.token_urlsafe(18)  # only the fake and the sealed column know it
    stack.fake_rpapos.add_tenant(subdomain, RPAPOS_USER, password, volume=volume)
    connection_id = uuid4()  # first: the envelope is bound to it
    sealed = stack.cipher.encrypt(
        password,
        table=RPAPOS_CONNECTION_TABLE,
        column=SEALED_COLUMNS["password"],
        row_id=str(connection_id),
    )
    with stack.owner_connection() as conn:
        tenant_id = seed.create_tenant(conn, name, country="GT")
        conn.execute(
            "UPDATE identity.tenants SET pos_provider_preference = 'other' WHERE id = %s", (tenant_id,)
        )
        conn.execute(
            "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted,"
            " timezone, currency_code, estacion_trabajo, sync_interval_minutes, created_by)"
            " VALUES (%s, %s, %s, %s, %s, 'America/Guatemala', 'GTQ', %s, NULL, %s)",
            (connection_id, tenant_id, subdomain, RPAPOS_USER, sealed, RPAPOS_WORKSTATION, _admin_id(stack)),
        )
    answer = requests.post(
        f"{stack.api_url}/admin/tenants/{tenant_id}/rpapos/connections/{connection_id}/device",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=60,
    )
    if answer.status_code != 200 or not answer.json().get("has_soap_token"):
        raise RuntimeError(f"registering the demo RPApos device failed: {answer.status_code} {answer.text}")
    found = RpaposDemo(
        tenant_id=tenant_id,
        tenant_name=name,
        connection_id=connection_id,
        subdomain=subdomain,
        base_url=stack.fake_rpapos.tenant_url(subdomain),
        soap_url=stack.fake_rpapos.soap_url,
        volume=volume,
    )
    stack.rpapos = found
    stack.write_description()
    return found


def _admin_id(stack: "LocalStack") -> UUID | None:
    return stack.demo.admin_id if stack.demo else None
