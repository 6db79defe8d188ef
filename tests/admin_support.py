"""The admin API in-process, as API Gateway invokes it behind the JWT authorizer, and a cast of
callers (platform admin, tenant roles of two tenants, a suspended user) to call it as."""

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import boto3
import psycopg
import pytest
from moto import mock_aws

from local import seed
from local.database import Database
from tests.helpers import (
    FakeLambdaContext,
    clear_parameter_caches,
    create_wallet,
    fresh_import,
    ledger_entry,
    unique_email,
)

ADMIN_ROLE = "pos_gateway_admin"
REGION = "us-east-1"
CIPHER = seed.dev_cipher()


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"]["code"])
        return None


def admin_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None,
    body: Any = None,
    raw_body: bytes | None = None,
    query: dict[str, Any] | None = None,
    base64_encoded: bool = False,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """A payload-2.0 event for an /admin route, with the authorizer's claims when given."""
    payload = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
    now = datetime.now(UTC)
    query = {k: str(v) for k, v in (query or {}).items() if v is not None}
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api1234567",
        "domainName": "api.example.test",
        "domainPrefix": "api",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "t",
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": "ANY /admin/{proxy+}",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    encoded = None
    if payload is not None:
        encoded = base64.b64encode(payload).decode() if base64_encoded else payload.decode("utf-8", "replace")
    return {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "headers": {"content-type": content_type, "host": "api.example.test"},
        "queryStringParameters": query or None,
        "pathParameters": {"proxy": path.removeprefix("/admin/")},
        "requestContext": context,
        "body": encoded,
        "isBase64Encoded": base64_encoded and payload is not None,
    }


@dataclass
class AdminApi:
    module: ModuleType
    sqs: Any
    ingest_queue_url: str
    dead_letter_queue_url: str

    def call(self, method: str, path: str, claims: dict[str, Any] | None = None, **kwargs: Any) -> Answer:
        result = self.module.lambda_handler(
            admin_event(method, path, claims=claims, **kwargs), FakeLambdaContext()
        )
        text = result.get("body") or ""
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        return Answer(int(result["statusCode"]), parsed, headers)


@contextmanager
def open_admin_api(database: Database, *, read_url: str | None = None) -> Iterator[AdminApi]:
    """functions/admin_api/app.py cold-started against the module database (role pos_gateway_admin)."""
    keys = {
        "currentKeyId": CIPHER.current_key_id,
        "keys": {k: base64.b64encode(v).decode() for k, v in CIPHER.keys.items()},
    }
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        suffix = uuid.uuid4().hex[:8]  # several APIs may be open at once
        db = secrets.create_secret(
            Name=f"db/admin-{suffix}", SecretString=json.dumps(database.secret(ADMIN_ROLE))
        )
        key_ring = secrets.create_secret(Name=f"encryption-keys-{suffix}", SecretString=json.dumps(keys))
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = sqs.create_queue(QueueName=f"ingest-dlq-{suffix}")["QueueUrl"]
        ingest = sqs.create_queue(QueueName=f"ingest-{suffix}")["QueueUrl"]
        clear_parameter_caches()
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("POWERTOOLS_SERVICE_NAME", "admin_api")
        env.setenv("POWERTOOLS_METRICS_NAMESPACE", "PosGateway")
        env.setenv("DB_SECRET_ARN", db["ARN"])
        env.setenv("ENCRYPTION_KEYS_SECRET_ARN", key_ring["ARN"])
        env.setenv("INGEST_QUEUE_URL", ingest)
        env.setenv("DEAD_LETTER_QUEUE_URL", dlq)
        if read_url is None:
            env.delenv("DATABASE_READ_URL", raising=False)
        else:
            env.setenv("DATABASE_READ_URL", read_url)
        module = fresh_import("functions.admin_api.app")
        try:
            yield AdminApi(module, sqs, ingest, dlq)
        finally:
            module.services.database.close()
            clear_parameter_caches()


@dataclass
class Cast:
    """Two tenants and everyone who calls the admin API about them."""

    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    admin: uuid.UUID
    client_a: uuid.UUID
    operator_a: uuid.UUID
    client_b: uuid.UUID
    suspended_client_a: uuid.UUID
    member_a: uuid.UUID
    wallet_a: uuid.UUID
    member_b: uuid.UUID
    wallet_b: uuid.UUID
    extra: dict[str, Any] = field(default_factory=dict)

    def claims(self, who: str) -> dict[str, Any]:
        """The claims the authorizer passes on for one of the cast (by attribute name)."""
        user_id = getattr(self, who)
        role, tenant = {
            "admin": ("admin", None),
            "client_a": ("client", self.tenant_a),
            "operator_a": ("pos_operator", self.tenant_a),
            "client_b": ("client", self.tenant_b),
            "suspended_client_a": ("client", self.tenant_a),
        }[who]
        claims = {
            "sub": str(user_id),
            "role": role,
            "iss": "https://auth.example.test/",
            "aud": "pos-gateway",
        }
        if tenant is not None:
            claims["tenant_id"] = str(tenant)
        return claims


def make_cast(owner: psycopg.Connection[Any], *, balance: int = 1000) -> Cast:
    tenant_a = seed.create_tenant(owner, f"Tenant A {uuid.uuid4().hex[:6]}")
    tenant_b = seed.create_tenant(owner, f"Tenant B {uuid.uuid4().hex[:6]}")
    admin = seed.create_user(owner, email=unique_email("admin"), role="admin", full_name="Ada Admin")
    client_a = seed.create_user(
        owner, email=unique_email("client-a"), role="client", full_name="Carla Client"
    )
    operator_a = seed.create_user(owner, email=unique_email("operator-a"), role="pos_operator")
    client_b = seed.create_user(owner, email=unique_email("client-b"), role="client")
    suspended = seed.create_user(owner, email=unique_email("suspended"), role="client", status="suspended")
    seed.add_member(owner, tenant_a, client_a, "client")
    seed.add_member(owner, tenant_a, operator_a, "pos_operator")
    seed.add_member(owner, tenant_b, client_b, "client")
    seed.add_member(owner, tenant_a, suspended, "client")
    member_a = seed.create_user(owner, email=unique_email("member-a"), full_name="Mia Member")
    member_b = seed.create_user(owner, email=unique_email("member-b"))
    wallet_a = create_wallet(owner, tenant_a, member_a)
    wallet_b = create_wallet(owner, tenant_b, member_b)
    if balance:
        ledger_entry(owner, tenant_a, wallet_a, "credit", balance)
        ledger_entry(owner, tenant_b, wallet_b, "credit", balance)
    return Cast(
        tenant_a,
        tenant_b,
        admin,
        client_a,
        operator_a,
        client_b,
        suspended,
        member_a,
        wallet_a,
        member_b,
        wallet_b,
    )


def audit_rows(owner: psycopg.Connection[Any], **where: Any) -> list[dict[str, Any]]:
    """Audit rows matching column = value, oldest first (as the owner: no row-level security)."""
    clauses = " AND ".join(f"{column} = %({column})s" for column in where) or "true"
    return list(
        owner.execute(f"SELECT * FROM audit.admin_audit_logs WHERE {clauses} ORDER BY created_at, id", where)
    )
