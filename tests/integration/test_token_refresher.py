"""The Square token refresher against real Postgres, the fake Square's OAuth over HTTP, moto secrets."""

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import errors

from local import seed
from local.database import Database
from local.fake_square import (
    FakeConnection,
    FakeSquare,
    connect_fake_merchant,
    encryption_secret_value,
    oauth_secret_value,
)
from pos_gateway.backfill.refresher import OAuthClient, RefreshPolicy, RefreshReport, TokenRefresher
from pos_gateway.backfill.repository import TokenStore
from pos_gateway.crypto import CredentialCipher, DecryptionError
from pos_gateway.providers.square.api import SquareApi
from tests.helpers import FakeLambdaContext, clear_parameter_caches, fresh_import, one, unique

REFRESHER = "pos_gateway_token_refresher"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "token_refresher"
TABLE = "pos.pos_connections"

Connection = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSquare]:
    with FakeSquare() as server:
        yield server


@pytest.fixture(scope="module")
def cipher() -> CredentialCipher:
    return seed.dev_cipher()


@pytest.fixture(scope="module")
def token_store(database: Database) -> Iterator[TokenStore]:
    connections = database.connections(REFRESHER)
    yield TokenStore(connections)
    connections.close()


@pytest.fixture(autouse=True)
def _only_this_tests_connections(owner: Connection) -> None:
    """The refresher takes every due Square connection: each test starts with none."""
    owner.execute("UPDATE pos.pos_connections SET status = 'disconnected' WHERE status <> 'disconnected'")


@pytest.fixture
def make_refresher(
    token_store: TokenStore, fake: FakeSquare, cipher: CredentialCipher
) -> Callable[..., TokenRefresher]:
    def build(
        with_cipher: CredentialCipher | None = None, client_secret: str | None = None
    ) -> TokenRefresher:
        oauth = OAuthClient(fake.client_id, client_secret or fake.client_secret)
        return TokenRefresher(
            token_store,
            SquareApi(fake.base_url, read_timeout=5),
            lambda: with_cipher or cipher,
            lambda: oauth,
            RefreshPolicy(window=timedelta(days=7), max_connections=100),
        )

    return build


def connected(
    owner: Connection, cipher: CredentialCipher, fake: FakeSquare, expires_in: timedelta | None
) -> FakeConnection:
    tenant_id = seed.create_tenant(owner, unique("Tenant "))
    expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
    return connect_fake_merchant(owner, cipher, fake, tenant_id, unique("ML"), token_expires_at=expires_at)


def stored(owner: Connection, connection: FakeConnection) -> dict[str, Any]:
    return dict(
        one(
            owner.execute(
                "SELECT access_token_enc, refresh_token_enc, token_expires_at, status, last_error"
                " FROM pos.pos_connections WHERE id = %s",
                (connection.connection_id,),
            ).fetchone()
        )
    )


def opened(cipher: CredentialCipher, row: dict[str, Any], column: str, connection: FakeConnection) -> str:
    return cipher.decrypt(row[column], table=TABLE, column=column, row_id=str(connection.connection_id))


def oauth_calls(fake: FakeSquare) -> list[dict[str, Any]]:
    return [r.body or {} for r in fake.requests if r.path == "/oauth2/token"]


# ---------------------------------------------------------------- which tokens


def test_only_tokens_expiring_within_seven_days_are_refreshed(owner, cipher, fake, make_refresher):
    soon = connected(owner, cipher, fake, timedelta(days=3))
    later = connected(owner, cipher, fake, timedelta(days=10))
    never = connected(owner, cipher, fake, None)  # a personal access token: nothing to refresh
    before = {c.merchant_id: stored(owner, c) for c in (later, never)}
    fake.clear_requests()

    report = make_refresher().refresh_due()

    assert (report.due, report.refreshed, report.failed) == (1, 1, 0)
    assert [call["refresh_token"] for call in oauth_calls(fake)] == [soon.refresh_token]
    assert {c.merchant_id: stored(owner, c) for c in (later, never)} == before


# ---------------------------------------------------------------- what is stored


def test_new_tokens_are_sealed_for_their_row_and_column_and_replace_the_old(
    owner, cipher, fake, make_refresher
):
    # Given a connection whose token expires in two days
    connection = connected(owner, cipher, fake, timedelta(days=2))
    old = stored(owner, connection)

    # When the refresher runs
    make_refresher().refresh_due()

    # Then the new access token is stored sealed, opens with its AAD, and works with Square
    issued = fake.issued[-1]
    new = stored(owner, connection)
    assert new["access_token_enc"] != old["access_token_enc"]
    assert new["refresh_token_enc"] != old["refresh_token_enc"]  # the same token, sealed again
    assert issued["access_token"] not in new["access_token_enc"]
    assert opened(cipher, new, "access_token_enc", connection) == issued["access_token"]
    assert opened(cipher, new, "refresh_token_enc", connection) == connection.refresh_token
    assert new["token_expires_at"] == datetime.fromisoformat(issued["expires_at"])
    assert (new["status"], new["last_error"]) == ("active", None)
    assert [location.id for location in SquareApi(fake.base_url).list_locations(issued["access_token"])] == [
        "LMAIN"
    ]
    # and a sealed token moved to another column or row does not open
    row_id = str(connection.connection_id)
    with pytest.raises(DecryptionError):
        cipher.decrypt(new["access_token_enc"], table=TABLE, column="refresh_token_enc", row_id=row_id)
    with pytest.raises(DecryptionError):
        cipher.decrypt(
            new["access_token_enc"], table=TABLE, column="access_token_enc", row_id=str(uuid.uuid4())
        )


def test_refreshed_tokens_are_sealed_with_the_current_key(owner, cipher, fake, make_refresher):
    connection = connected(owner, cipher, fake, timedelta(days=1))
    rotated = CredentialCipher(
        keys={**cipher.keys, "local-2": secrets.token_bytes(32)}, current_key_id="local-2"
    )

    make_refresher(with_cipher=rotated).refresh_due()

    new = stored(owner, connection)
    assert {new["access_token_enc"].split(".")[1], new["refresh_token_enc"].split(".")[1]} == {"local-2"}
    assert opened(rotated, new, "refresh_token_enc", connection) == connection.refresh_token


def test_an_expired_connection_whose_refresh_works_is_back_in_service(owner, cipher, fake, make_refresher):
    connection = connected(owner, cipher, fake, timedelta(hours=-1))
    owner.execute(
        "UPDATE pos.pos_connections SET status = 'token_expired', last_error = 'x' WHERE id = %s",
        (connection.connection_id,),
    )

    make_refresher().refresh_due()

    assert (stored(owner, connection)["status"], stored(owner, connection)["last_error"]) == ("active", None)


# ---------------------------------------------------------------- failures


def test_a_refused_refresh_marks_the_connection_token_expired(owner, cipher, fake, make_refresher):
    refused = connected(owner, cipher, fake, timedelta(days=5))
    fine = connected(owner, cipher, fake, timedelta(days=6))
    fake.revoke(refused.refresh_token)
    before = stored(owner, refused)

    report = make_refresher().refresh_due()

    assert (report.refreshed, report.failed, report.token_expired) == (1, 1, 1)
    after = stored(owner, refused)
    assert after["status"] == "token_expired"
    assert "401" in after["last_error"]
    assert (after["access_token_enc"], after["token_expires_at"]) == (
        before["access_token_enc"],
        before["token_expires_at"],
    )
    assert stored(owner, fine)["status"] == "active"


def test_wrong_application_credentials_are_a_refusal(owner, cipher, fake, make_refresher):
    connection = connected(owner, cipher, fake, timedelta(days=5))

    make_refresher(client_secret="sq0csp-wrong").refresh_due()

    assert stored(owner, connection)["status"] == "token_expired"


def test_a_transient_failure_keeps_a_working_token_in_service(owner, cipher, fake, make_refresher):
    connection = connected(owner, cipher, fake, timedelta(days=5))
    fake.fail(503, path="/oauth2/token")

    report = make_refresher().refresh_due()

    after = stored(owner, connection)
    assert (report.failed, report.token_expired) == (1, 0)
    assert after["status"] == "active"
    assert "503" in after["last_error"]


def test_a_transient_failure_after_the_token_ran_out_marks_it_expired(owner, cipher, fake, make_refresher):
    connection = connected(owner, cipher, fake, timedelta(minutes=-5))
    fake.fail(429, path="/oauth2/token")

    make_refresher().refresh_due()

    after = stored(owner, connection)
    assert after["status"] == "token_expired"
    assert "429" in after["last_error"]


def test_a_refresh_token_that_does_not_open_sets_error(owner, cipher, fake, make_refresher):
    connection = connected(owner, cipher, fake, timedelta(days=1))
    fake.clear_requests()

    make_refresher(with_cipher=seed.dev_cipher()).refresh_due()

    assert stored(owner, connection)["status"] == "error"
    assert oauth_calls(fake) == []


def test_tokens_replaced_meanwhile_are_not_overwritten(owner, cipher, fake, token_store):
    connection = connected(owner, cipher, fake, timedelta(days=1))
    before = stored(owner, connection)

    updated = token_store.store_refreshed(
        connection.connection_id,
        previous_access_token_enc="v1.local-1.something.else",
        access_token_enc="v1.k.n.c",
        refresh_token_enc="v1.k.n.c",
        token_expires_at=datetime.now(UTC) + timedelta(days=30),
    )

    assert updated is False
    assert stored(owner, connection) == before


# ---------------------------------------------------------------- the database role


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT refresh_token_enc FROM pos.pos_connections",
        "UPDATE pos.pos_connections SET status = 'active'",
        "SELECT * FROM pos.pos_webhook_events_raw",
        "SELECT * FROM pos.square_poll_claim_connections(1)",
    ],
)
def test_the_refresher_role_only_reaches_its_functions(database, statement):
    with database.connect_as(REFRESHER) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


# ---------------------------------------------------------------- the Lambda handler


@pytest.fixture
def refresher_handler(database, cipher, fake) -> Iterator[Any]:
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        sm = boto3.client("secretsmanager", region_name="us-east-1")

        def secret(name: str, value: dict[str, Any]) -> str:
            arn: str = sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
            return arn

        clear_parameter_caches()
        env.setenv("POWERTOOLS_SERVICE_NAME", "token_refresher")
        env.setenv("DB_SECRET_ARN", secret("db/refresher", database.secret(REFRESHER)))
        env.setenv("ENCRYPTION_KEYS_SECRET_ARN", secret("keys", encryption_secret_value(cipher)))
        env.setenv("SQUARE_OAUTH_SECRET_ARN", secret("square/oauth", oauth_secret_value(fake)))
        env.setenv("SQUARE_API_BASE_URL", fake.base_url)
        yield fresh_import("functions.token_refresher.app")
        clear_parameter_caches()


def test_the_handler_refreshes_on_its_schedule_and_never_logs_a_token(
    owner, cipher, fake, refresher_handler, capsys, caplog
):
    fine = connected(owner, cipher, fake, timedelta(days=2))
    refused = connected(owner, cipher, fake, timedelta(days=2))
    fake.revoke(refused.refresh_token)
    scheduled = json.loads((EVENTS / "scheduled.json").read_text())

    report = refresher_handler.lambda_handler(scheduled, FakeLambdaContext(function_name="token_refresher"))

    assert RefreshReport.model_validate(report) == RefreshReport(
        due=2, refreshed=1, failed=1, token_expired=1
    )
    new_access = opened(cipher, stored(owner, fine), "access_token_enc", fine)
    output = capsys.readouterr()
    logged = output.out + output.err + "".join(repr(vars(record)) for record in caplog.records)
    assert "token refresh done" in logged
    for token in (
        fine.access_token,
        fine.refresh_token,
        refused.refresh_token,
        new_access,
        fake.client_secret,
    ):
        assert token not in logged
    assert base64.b64encode(cipher.keys["local-1"]).decode() not in logged
