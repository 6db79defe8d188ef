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
    field: "FieldDemo"  # a poultry distributor whose sellers work offline

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
    field = load_field(conn)
    return Demo(
        tenants=[
            DemoTenant(cafe, "Blue Bottle Cafe", "square", "MLBLUEBOTTLE01"),
            DemoTenant(bakery, "Corner Bakery", "square", "MLCORNERBAKE02"),
            DemoTenant(deli, "Harbor Deli", "clover", CLOVER_MERCHANT, clover_token),
        ],
        operator_id=operator,
        admin_id=admin,
        client_id=client,
        field=field,
    )


# ---------------------------------------------------------------- offline field sales (seed 004)

FIELD_TENANT = "Avícola Don Pepe"  # sells chicken and eggs from carts, offline most of the day
# A member of the loyalty program whose phone the sellers type as 987 654 321.
FIELD_MEMBER_MOBILE = "+51987654321"


@dataclass(frozen=True)
class FieldDemo:
    """The field-sales demo, as `.local/stack.json` names it (``field``)."""

    tenant_id: UUID
    owner_credential: str  # the admin_negocio's device
    seller_credential: str  # the vendedor's device
    products: dict[str, UUID]
    member_id: UUID

    def describe(self, api_url: str) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "tenant_name": FIELD_TENANT,
            "push_url": f"{api_url}/sync/push",
            "pull_url": f"{api_url}/sync/pull",
            "owner_device_credential": self.owner_credential,
            "seller_device_credential": self.seller_credential,
            "products": {name: str(product_id) for name, product_id in self.products.items()},
            "member_mobile": FIELD_MEMBER_MOBILE,
        }


def load_field(conn: seed.Conn) -> FieldDemo:
    """Stock is counted and each seller sells from a daily distribution; no overselling."""
    tenant_id = seed.create_tenant(conn, FIELD_TENANT, country="PE")
    seed.create_field_business(conn, tenant_id, control_kilos=True, usar_distribucion=True)
    seed.create_rule(conn, tenant_id)  # 1 point per sol
    credentials, sellers = [], []
    for name, role, point in (("Pepe", "admin_negocio", "Casa"), ("Rosa", "vendedor", "Carro A")):
        user = seed.create_user(conn, email=f"{name.lower()}@donpepe.example", role="client", full_name=name)
        sellers.append(seed.add_seller(conn, tenant_id, user, role=role, sales_point=point))
        credentials.append(seed.register_device(conn, tenant_id, sellers[-1], label=f"{name}'s phone"))
    # Today's kilos for Rosa's cart (the admin assigns them; devices usually push it).
    seed.open_distribution(conn, tenant_id, vendedor_id=sellers[1], created_by=sellers[0], kilos="200.000")
    products = {
        "pollo": seed.create_field_product(conn, tenant_id, "Pollo entero", "9.9000", stock="500.000"),
        "huevo": seed.create_field_product(
            conn, tenant_id, "Huevo", "0.5000", stock="3000", product_type="huevo", unit="unidad"
        ),
    }
    member = seed.create_user(conn, mobile=FIELD_MEMBER_MOBILE, full_name="María Demo")
    return FieldDemo(tenant_id, credentials[0], credentials[1], products, member)


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
