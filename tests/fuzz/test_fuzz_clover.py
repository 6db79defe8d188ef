"""Clover: the webhook message and verification POST (``CloverWebhookIngest.receive`` and the
clover_webhook handler in-process), and the payment JSON of the REST API as the crediting reads
it (``CloverClient.get_payment`` then ``payment_record`` / ``refund_records``).

The rule: a delivery is stored, or refused with a WebhookRejected (400 malformed, 401 without the
auth code or for another app) and nothing stored; the handler answers 200 or a 4xx with the
error body, never a 5xx or an exception; a payment parses (CloverPayment) or is CloverApiError,
and a parsed payment normalizes without another error.
"""

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import urllib3
from hypothesis import event, example, given
from hypothesis import strategies as st

from local import seed
from local.database import Database
from local.fake_clover import connect_clover_merchant
from pos_gateway.ingest.clover import (
    CloverEventStore,
    CloverWebhookConfig,
    CloverWebhookIngest,
    StoredUpdate,
)
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.service import WebhookRejected
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.clover import (
    CloverApiError,
    CloverClient,
    CloverPayment,
    payment_record,
    refund_records,
)
from pos_gateway.providers.clover.webhook import CLOVER_AUTH_HEADER, MerchantUpdate
from tests.fuzz.conftest import (
    ANY,
    BodyRecipe,
    Framing,
    Mutation,
    Webhook,
    assert_error_body,
    attempt,
    fuzz,
    recipes,
)
from tests.helpers import (
    count,
    deployed_webhook,
    http_api_event,
    raw_count,
    unique,
)

AUTH_CODE = "fuzz-clover-auth-code"
APP_ID = "FUZZAPP0000001"
# Epoch milliseconds of 10000-01-01: the first createdTime datetime.fromtimestamp cannot give.
YEAR_10000_MS = 253_402_300_800_000

CONNECTED = "MFUZZ0000001"  # connected to a tenant by the handler's fixture
NOTIFICATION: dict[str, Any] = {
    "appId": APP_ID,
    "merchants": {
        CONNECTED: [
            {"objectId": "P:PAYFUZZ00001", "type": "CREATE", "ts": 1763651046000},
            {"objectId": "O:ORDFUZZ00001", "type": "UPDATE", "ts": 1763651052000},
        ],
        "MFUZZ0000002": [{"objectId": "P:PAYFUZZ00002", "type": "DELETE", "ts": 1763651101000}],
    },
}
VERIFICATION: dict[str, Any] = {"verificationCode": "a1b2c3d4-e5f6-4711-8899-aabbccddeeff"}
PAYMENT: dict[str, Any] = {
    "id": "PAYFUZZ00001",
    "order": {
        "id": "ORDFUZZ00001",
        "currency": "USD",
        "customers": {
            "elements": [
                {
                    "id": "CUSTFUZZ0001",
                    "emailAddresses": {"elements": [{"id": "E1", "emailAddress": "Alice@Example.com"}]},
                    "phoneNumbers": {"elements": [{"id": "P1", "phoneNumber": "(415) 555-0134"}]},
                }
            ]
        },
    },
    "amount": 4250,
    "tipAmount": 300,
    "result": "SUCCESS",
    "createdTime": 1763651045000,
    "refunds": {"elements": [{"id": "REFFUZZ00001", "amount": 1250, "createdTime": 1763651050000}]},
}
CLOVER_VALUES: tuple[Any, ...] = (
    "P:PAYFUZZ00001",
    "P:",
    ":X",
    "p:lower",
    "CREATE",
    "UPDATE",
    "create",
    "SUCCESS",
    "FAIL",
    "MFUZZ0000001",
    APP_ID,
    [],
    {},
    {"elements": []},
    {"elements": [{}]},
    YEAR_10000_MS - 1,
)

Made = tuple[dict[str, Any], BodyRecipe]  # a template and a recipe drawn for its shape


def webhook_recipes(*, whole_body: bool = True) -> st.SearchStrategy[Made]:
    return st.one_of(
        [
            st.tuples(st.just(t), recipes(t, ANY, extra=CLOVER_VALUES, whole_body=whole_body))
            for t in (NOTIFICATION, VERIFICATION)
        ]
    )


deliveries = webhook_recipes()
# Plain JSON with a few fields changed: mostly valid deliveries, to reach the store.
near_valid_deliveries = webhook_recipes(whole_body=False)
payment_recipes = st.one_of(
    recipes(PAYMENT, ANY, extra=CLOVER_VALUES), recipes(PAYMENT, ANY, extra=CLOVER_VALUES, whole_body=False)
)


# ---------------------------------------------------------------- the ingest service


class RecordingCloverStore(CloverEventStore):
    """A CloverEventStore without a database: records what it was asked to store."""

    def __init__(self) -> None:  # no connections, on purpose
        self.updates: list[MerchantUpdate] = []
        self.verification_codes: list[str] = []

    def store(self, updates: list[MerchantUpdate], raw_body: str) -> list[StoredUpdate]:
        self.updates += updates
        return [StoredUpdate(update, uuid.uuid4(), uuid.uuid4()) for update in updates]

    def store_verification(self, code: str) -> None:
        self.verification_codes.append(code)


class RecordingQueue(IngestQueue):
    def __init__(self) -> None:  # no SQS client, on purpose
        self.sent: list[CreditRequest] = []

    def enqueue(self, request: CreditRequest) -> None:
        self.sent.append(request)


def clover_ingest(
    store: RecordingCloverStore, queue: RecordingQueue, app_id: str | None
) -> CloverWebhookIngest:
    config = CloverWebhookConfig(auth_code=AUTH_CODE, app_id=app_id)
    return CloverWebhookIngest(lambda: config, store, queue)


@fuzz(300)
@given(
    made=st.one_of(deliveries, near_valid_deliveries),
    auth=st.sampled_from([AUTH_CODE, AUTH_CODE, f" {AUTH_CODE} ", None, "", "wrong"]),
    app_id=st.sampled_from([None, APP_ID]),
)
def test_a_delivery_is_stored_or_refused_with_nothing_stored(
    made: Made, auth: str | None, app_id: str | None
) -> None:
    template, recipe = made
    store, queue = RecordingCloverStore(), RecordingQueue()
    body = recipe.body(template)
    result = attempt(lambda: clover_ingest(store, queue, app_id).receive(body, auth), WebhookRejected)
    if isinstance(result, WebhookRejected):
        event(f"refused {result.code}")
        assert (result.status_code, result.code) in {
            (400, "malformed_event"),
            (401, "invalid_auth_code"),
            (401, "unknown_app"),
        }, result
        assert (store.updates, store.verification_codes, queue.sent) == ([], [], [])
        return
    event("verification" if result.verification else "stored")
    if result.verification:
        assert store.updates == []
        assert len(store.verification_codes) == 1
    else:
        assert auth is not None
        assert auth.strip() == AUTH_CODE, "stored without the auth code"
        assert result.received == len(store.updates)


# ---------------------------------------------------------------- the payment, as crediting reads it


class OnePagePool(urllib3.PoolManager):
    """A PoolManager that answers every request with one body (no socket)."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__()
        self.body = body
        self.status = status

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        return urllib3.HTTPResponse(
            body=self.body, status=self.status, headers={"Content-Type": "application/json"}
        )


def read_payment(body: bytes) -> CloverPayment | None:
    """The payment as CloverClient gives it; None when refused with CloverApiError."""
    client = CloverClient("https://clover.example.test", pool=OnePagePool(body))
    try:
        return client.get_payment("MFUZZ0000001", "PAYFUZZ00001", "token")
    except CloverApiError:
        return None


@fuzz(300)
@given(recipe=payment_recipes)
def test_a_payment_parses_and_normalizes_or_is_a_clover_api_error(recipe: BodyRecipe) -> None:
    payment = read_payment(recipe.body(PAYMENT))
    event("refused" if payment is None else "parsed")
    if payment is None:
        return
    record = payment_record("MFUZZ0000001", payment)
    refunds = refund_records("MFUZZ0000001", payment)
    assert record.amount_minor_units == payment.amount
    assert len(refunds) == len(payment.refunds.elements)


# ---------------------------------------------------------------- the handler, on the database


@pytest.fixture(scope="module")
def webhook(database: Database, owner: psycopg.Connection[Any]) -> Iterator[Webhook]:
    merchant_id = CONNECTED  # the module's own database: the template's merchant is connected
    tenant_id = seed.create_tenant(owner, unique("Clover fuzz "))
    connect_clover_merchant(owner, tenant_id, merchant_id, seed.dev_cipher())
    with deployed_webhook(
        "functions.clover_webhook.app",
        "CLOVER_WEBHOOK_SECRET_ARN",
        {"authCode": AUTH_CODE},
        database.secret("pos_gateway_ingest"),
    ) as module:
        yield Webhook(module, merchant_id)


def written(owner: psycopg.Connection[Any]) -> tuple[int, int]:
    codes = count(owner, "SELECT count(*) AS n FROM pos.provider_verification_codes")
    return raw_count(owner), codes


def fresh(template: dict[str, Any]) -> dict[str, Any]:
    """The template again, with a new verification code or objects not delivered before."""
    document: dict[str, Any] = json.loads(json.dumps(template))
    if "verificationCode" in document:
        return {"verificationCode": unique("code-")}
    for updates in document["merchants"].values():
        for update in updates:
            update["objectId"] = f"{update['objectId'][:2]}{unique('OBJ')}"
    return document


@fuzz(40)
@given(
    made=st.one_of(deliveries, near_valid_deliveries),
    auth=st.sampled_from([AUTH_CODE, AUTH_CODE, None, "wrong"]),
    base64_encoded=st.booleans(),
)
def test_the_handler_answers_200_or_a_clear_4xx_and_a_4xx_writes_nothing(
    webhook: Webhook,
    owner: psycopg.Connection[Any],
    made: Made,
    auth: str | None,
    base64_encoded: bool,
) -> None:
    template, recipe = made
    base = fresh(template)
    body = recipe.body(base)
    headers = {} if auth is None else {CLOVER_AUTH_HEADER: auth}
    before = written(owner)
    request = clover_event(body, headers)
    if base64_encoded and not request["isBase64Encoded"]:
        request = {**request, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    status, answer = webhook.call(request)
    event(f"{status} {answer.get('status') or answer.get('error', {}).get('code')}")
    assert status in {200, 400, 401}, (status, answer)
    if status != 200:
        assert_error_body(answer)
        assert written(owner) == before, "a refused delivery wrote something"


def clover_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """An HTTP API v2 POST /webhooks/clover (base64 when the body is not UTF-8, as API Gateway does)."""
    request = http_api_event(body, headers, base64_encoded=not _utf8(body))
    path = request["rawPath"].replace("/webhooks/square", "/webhooks/clover")
    request["rawPath"] = request["requestContext"]["http"]["path"] = path
    request["routeKey"] = request["requestContext"]["routeKey"] = "POST /webhooks/clover"
    return request


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------- findings
# Found by this suite, fixed while it was written (kept as regression tests): a Clover body nested
# past json's recursion limit raised RecursionError (500); a payment createdTime past year 9999
# passed CloverPayment and payment_record's datetime.fromtimestamp raised ValueError.


@fuzz(5)
@given(depth=st.sampled_from([1_500, 3_000, 100_000]), auth=st.sampled_from([AUTH_CODE, None]))
@example(depth=100_000, auth=None)
def test_a_deeply_nested_delivery_is_refused_not_crashed(
    webhook: Webhook, owner: psycopg.Connection[Any], depth: int, auth: str | None
) -> None:
    body = b"[" * depth + b"]" * depth
    headers = {} if auth is None else {CLOVER_AUTH_HEADER: auth}
    before = written(owner)
    status, answer = webhook.call(clover_event(body, headers))
    assert status == 400, (status, answer)
    assert_error_body(answer)
    assert written(owner) == before


@fuzz(10)
@given(
    created=st.sampled_from([YEAR_10000_MS, 10**15]),
    where=st.sampled_from(["payment", "refund"]),
)
@example(created=YEAR_10000_MS, where="payment")
def test_a_payment_dated_after_year_9999_is_refused_not_crashed(created: int, where: str) -> None:
    path: tuple[str | int, ...] = (
        ("createdTime",) if where == "payment" else ("refunds", "elements", 0, "createdTime")
    )
    body = BodyRecipe((Mutation(path, "replace", created),), Framing("plain", True, 0)).body(PAYMENT)
    payment = read_payment(body)
    if payment is None:
        return  # refused at the edge: CloverApiError, as documented
    payment_record("MFUZZ0000001", payment)
    refund_records("MFUZZ0000001", payment)
