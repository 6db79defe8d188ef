"""Operations routes: transactions, reward events and raw webhook events as each role may see
them; replaying raw events (through crediting, out of quarantine, past a failed send); the
dead-letter queue's depth and redrive."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from local import seed
from local.database import Database
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.loyalty.models import ProcessingOutcome
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.recovery.repository import StuckEventClaims
from pos_gateway.recovery.sweeper import CreditRequestQueue, OutboxSweeper, SweepPolicy
from tests.admin_support import AdminApi, Answer, Cast, audit_rows
from tests.helpers import (
    connected_merchant,
    count,
    insert_raw_event,
    one,
    payment_event,
    store_event,
    unique,
    unique_email,
)

JANUARY = datetime(2026, 1, 1, 12, tzinfo=UTC)


# ---------------------------------------------------------------- arranging


def transaction(
    owner: psycopg.Connection[Any],
    tenant_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    provider: str = "square",
    at: datetime = JANUARY,
) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO pos.transactions (tenant_id, user_id, provider, provider_transaction_id,"
        " amount_minor_units, currency, transaction_at, customer_ref)"
        " VALUES (%s, %s, %s, %s, 1000, 'USD', %s, '{\"email\": \"private@example.com\"}') RETURNING id",
        (tenant_id, user_id, provider, unique("pay_"), at),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def reward_event(
    owner: psycopg.Connection[Any],
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    *,
    kind: str = "earn",
    transaction_id: uuid.UUID | None = None,
    redeemed_by: uuid.UUID | None = None,
) -> uuid.UUID:
    refund_id = None
    if kind == "reversal":
        refund_id = one(
            owner.execute(
                "INSERT INTO pos.refunds (tenant_id, transaction_id, provider, provider_refund_id,"
                " amount_minor_units, currency, refunded_at) VALUES (%s, %s, 'square', %s, 500, 'USD', now())"
                " RETURNING id",
                (tenant_id, transaction_id, unique("ref_")),
            ).fetchone()
        )["id"]
    outcome = {"earn": "credited", "redeem": "redeemed", "reversal": "reversed"}[kind]
    row = owner.execute(
        "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, transaction_id, kind, outcome,"
        " points_earned, points_redeemed, points_reversed, refund_id, redeemed_by, order_amount_minor_units)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            tenant_id,
            wallet_id,
            transaction_id,
            kind,
            outcome,
            10 if kind == "earn" else 0,
            5 if kind == "redeem" else 0,
            3 if kind == "reversal" else 0,
            refund_id,
            redeemed_by,
            1000 if kind == "redeem" else None,
        ),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def clover_raw_event(owner: psycopg.Connection[Any], tenant_id: uuid.UUID) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO pos.pos_webhook_events_raw (tenant_id, provider, event_type, provider_event_id,"
        " merchant_account_id, raw_payload, raw_body) VALUES (%s, 'clover', 'P:CREATE', %s, %s, '{}', '{}')"
        " RETURNING id",
        (tenant_id, unique("clv-"), unique("MC")),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def park(owner: psycopg.Connection[Any], raw_id: uuid.UUID) -> None:
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET parked_at = now(), sweep_count = 5, last_swept_at = now(),"
        " last_error = 'TimeoutError: crediting timed out' WHERE id = %s",
        (raw_id,),
    )


def mark_processed(owner: psycopg.Connection[Any], raw_id: uuid.UUID) -> None:
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'anonymous' WHERE id = %s",
        (raw_id,),
    )


def raw_row(owner: psycopg.Connection[Any], raw_id: uuid.UUID) -> dict[str, Any]:
    return dict(
        one(owner.execute("SELECT * FROM pos.pos_webhook_events_raw WHERE id = %s", (raw_id,)).fetchone())
    )


def drain(api: AdminApi, queue_url: str) -> list[str]:
    """Every message body waiting in a queue (deleted as read)."""
    bodies: list[str] = []
    while True:
        messages = api.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            api.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def credit_requests(api: AdminApi) -> list[CreditRequest]:
    return [CreditRequest.model_validate_json(body) for body in drain(api, api.ingest_queue_url)]


def ids(answer: Answer) -> list[str]:
    assert answer.status == 200, answer.body
    return [item["id"] for item in answer.body["items"]]


def platform_reads(owner: psycopg.Connection[Any], actor: uuid.UUID) -> int:
    return count(
        owner,
        "SELECT count(*) AS n FROM audit.admin_audit_logs"
        " WHERE action = 'platform.read' AND actor_user_id = %s",
        (actor,),
    )


# ---------------------------------------------------------------- transactions


def test_transactions_are_scoped_to_the_callers_tenant(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    in_a = transaction(owner, cast.tenant_a, user_id=cast.member_a)
    in_b = transaction(owner, cast.tenant_b, user_id=cast.member_a)

    answer = api.call("GET", "/admin/transactions", cast.claims("client_a"))
    assert ids(answer) == [str(in_a)]
    item = answer.body["items"][0]
    assert (item["tenant_id"], item["user_id"], item["provider"]) == (
        str(cast.tenant_a),
        str(cast.member_a),
        "square",
    )
    assert "customer_ref" not in item
    assert ids(api.call("GET", "/admin/transactions", cast.claims("client_b"))) == [str(in_b)]

    # A client naming its own tenant is fine; another tenant is not found.
    assert ids(
        api.call("GET", "/admin/transactions", cast.claims("client_a"), query={"tenant_id": cast.tenant_a})
    ) == [str(in_a)]
    foreign = api.call(
        "GET", "/admin/transactions", cast.claims("client_a"), query={"tenant_id": cast.tenant_b}
    )
    assert (foreign.status, foreign.error_code) == (404, "not_found")

    operator = api.call("GET", "/admin/transactions", cast.claims("operator_a"))
    assert (operator.status, operator.error_code) == (403, "role_not_allowed")
    suspended = api.call("GET", "/admin/transactions", cast.claims("suspended_client_a"))
    assert (suspended.status, suspended.error_code) == (403, "user_suspended")

    # The admin reads across tenants (audited), or in the tenant it names.
    everywhere = api.call(
        "GET", "/admin/transactions", cast.claims("admin"), query={"user_id": cast.member_a}
    )
    assert set(ids(everywhere)) == {str(in_a), str(in_b)}
    (read,) = audit_rows(owner, action="platform.read", actor_user_id=cast.admin)
    assert (read["tenant_id"], read["target_entity_type"]) == (None, "transaction")
    assert read["after_state"]["filters"]["user_id"] == str(cast.member_a)
    assert ids(
        api.call("GET", "/admin/transactions", cast.claims("admin"), query={"tenant_id": cast.tenant_b})
    ) == [str(in_b)]


def test_transactions_filter_by_user_provider_and_time(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    january = transaction(owner, cast.tenant_a, user_id=cast.member_a, at=JANUARY)
    february = transaction(owner, cast.tenant_a, user_id=cast.member_a, at=JANUARY + timedelta(days=31))
    march_clover = transaction(owner, cast.tenant_a, provider="clover", at=JANUARY + timedelta(days=59))
    client = cast.claims("client_a")

    assert ids(api.call("GET", "/admin/transactions", client)) == [
        str(march_clover),
        str(february),
        str(january),
    ]
    assert ids(api.call("GET", "/admin/transactions", client, query={"user_id": cast.member_a})) == [
        str(february),
        str(january),
    ]
    assert ids(api.call("GET", "/admin/transactions", client, query={"provider": "clover"})) == [
        str(march_clover)
    ]
    # [from, to): February only.
    window = {
        "from": (JANUARY + timedelta(days=1)).isoformat(),
        "to": (JANUARY + timedelta(days=59)).isoformat(),
    }
    assert ids(api.call("GET", "/admin/transactions", client, query=window)) == [str(february)]
    other_offset = {"from": "2026-02-01T09:00:00-05:00"}  # 14:00 UTC, after February's 12:00 UTC
    assert ids(api.call("GET", "/admin/transactions", client, query=other_offset)) == [str(march_clover)]


def test_transactions_page_with_a_keyset_cursor_through_equal_timestamps(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    made = {transaction(owner, cast.tenant_a, at=JANUARY) for _ in range(5)}
    client = cast.claims("client_a")
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = api.call("GET", "/admin/transactions", client, query={"limit": 2, "cursor": cursor})
        seen += ids(page)
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((str(t) for t in made), reverse=True)
    assert cursor is None


def test_bad_cursor_and_bad_time_range_write_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    admin = cast.claims("admin")
    bad = api.call("GET", "/admin/transactions", admin, query={"cursor": "bm90LWEtY3Vyc29y"})
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")
    backwards = {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    for path in ("/admin/transactions", "/admin/reward-events", "/admin/webhook-events"):
        answer = api.call("GET", path, admin, query=backwards)
        assert (answer.status, answer.error_code) == (422, "invalid_request"), path
        assert [field["loc"] for field in answer.body["error"]["fields"]] == ["query.to"]
    naive = api.call("GET", "/admin/transactions", admin, query={"from": "2026-01-01T00:00:00"})
    assert (naive.status, naive.error_code) == (422, "invalid_request")
    assert "query.from" in [field["loc"] for field in naive.body["error"]["fields"]]
    unknown = api.call("GET", "/admin/transactions", admin, query={"provider": "toast"})
    assert (unknown.status, unknown.error_code) == (422, "invalid_request")
    assert platform_reads(owner, cast.admin) == 0


# ---------------------------------------------------------------- reward events


def test_reward_events_scoping_and_filters(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]) -> None:
    square_sale = transaction(owner, cast.tenant_a, user_id=cast.member_a)
    clover_sale = transaction(owner, cast.tenant_a, user_id=cast.member_a, provider="clover")
    earn = reward_event(owner, cast.tenant_a, cast.wallet_a, transaction_id=square_sale)
    clover_earn = reward_event(owner, cast.tenant_a, cast.wallet_a, transaction_id=clover_sale)
    redeem = reward_event(owner, cast.tenant_a, cast.wallet_a, kind="redeem", redeemed_by=cast.member_a)
    reversal = reward_event(owner, cast.tenant_a, cast.wallet_a, kind="reversal", transaction_id=square_sale)
    in_b = reward_event(owner, cast.tenant_b, cast.wallet_b)
    client = cast.claims("client_a")

    listed = api.call("GET", "/admin/reward-events", client)
    assert set(ids(listed)) == {str(earn), str(clover_earn), str(redeem), str(reversal)}
    by_id = {item["id"]: item for item in listed.body["items"]}
    assert by_id[str(earn)] | {"created_at": None} == {
        "id": str(earn),
        "tenant_id": str(cast.tenant_a),
        "wallet_id": str(cast.wallet_a),
        "user_id": str(cast.member_a),
        "kind": "earn",
        "outcome": "credited",
        "transaction_id": str(square_sale),
        "provider": "square",
        "refund_id": None,
        "rule_version_id": None,
        "points_earned": 10,
        "points_redeemed": 0,
        "points_reversed": 0,
        "points_shortfall": 0,
        "created_at": None,
    }
    assert by_id[str(redeem)]["provider"] is None
    assert by_id[str(reversal)]["refund_id"] is not None

    assert ids(api.call("GET", "/admin/reward-events", client, query={"kind": "redeem"})) == [str(redeem)]
    assert set(ids(api.call("GET", "/admin/reward-events", client, query={"provider": "square"}))) == {
        str(earn),
        str(reversal),
    }
    assert ids(api.call("GET", "/admin/reward-events", client, query={"provider": "clover"})) == [
        str(clover_earn)
    ]
    assert ids(api.call("GET", "/admin/reward-events", client, query={"user_id": cast.member_b})) == []
    future = {"from": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert ids(api.call("GET", "/admin/reward-events", client, query=future)) == []

    foreign = api.call("GET", "/admin/reward-events", client, query={"tenant_id": cast.tenant_b})
    assert (foreign.status, foreign.error_code) == (404, "not_found")
    operator = api.call("GET", "/admin/reward-events", cast.claims("operator_a"))
    assert (operator.status, operator.error_code) == (403, "role_not_allowed")
    assert ids(api.call("GET", "/admin/reward-events", cast.claims("client_b"))) == [str(in_b)]
    everywhere = api.call(
        "GET", "/admin/reward-events", cast.claims("admin"), query={"user_id": cast.member_b}
    )
    assert str(in_b) in ids(everywhere)

    first = api.call("GET", "/admin/reward-events", client, query={"limit": 3})
    second = api.call(
        "GET", "/admin/reward-events", client, query={"limit": 3, "cursor": first.body["next_cursor"]}
    )
    assert len(ids(first)) == 3
    assert len(ids(second)) == 1
    assert second.body["next_cursor"] is None
    assert set(ids(first) + ids(second)) == set(by_id)


# ---------------------------------------------------------------- webhook events


def test_webhook_events_show_metadata_and_state_in_scope(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    pending = insert_raw_event(owner, cast.tenant_a)
    processed = insert_raw_event(owner, cast.tenant_a)
    mark_processed(owner, processed)
    parked = insert_raw_event(owner, cast.tenant_a)
    park(owner, parked)
    clover = clover_raw_event(owner, cast.tenant_a)
    in_b = insert_raw_event(owner, cast.tenant_b)
    quarantined = insert_raw_event(owner, None)
    client = cast.claims("client_a")

    listed = api.call("GET", "/admin/webhook-events", client)
    assert ids(listed) == [str(clover), str(parked), str(processed), str(pending)]
    states = {item["id"]: item["state"] for item in listed.body["items"]}
    assert states == {
        str(pending): "pending",
        str(processed): "processed",
        str(parked): "parked",
        str(clover): "pending",
    }
    item = next(item for item in listed.body["items"] if item["id"] == str(parked))
    assert set(item) == {
        "id",
        "tenant_id",
        "provider",
        "event_type",
        "provider_event_id",
        "merchant_account_id",
        "state",
        "processing_outcome",
        "sweep_count",
        "parked_at",
        "last_error",
        "quarantine_reason",
        "released_at",
        "created_at",
        "processed_at",
    }
    assert (item["sweep_count"], item["last_error"]) == (5, "TimeoutError: crediting timed out")
    assert "raw_body" not in json.dumps(listed.body)
    assert "signature" not in json.dumps(listed.body)

    for state, expected in (("parked", [parked]), ("processed", [processed]), ("quarantined", [])):
        assert ids(api.call("GET", "/admin/webhook-events", client, query={"state": state})) == [
            str(e) for e in expected
        ]
    assert ids(api.call("GET", "/admin/webhook-events", client, query={"provider": "clover"})) == [
        str(clover)
    ]
    oldest = listed.body["items"][-1]["created_at"]
    assert ids(api.call("GET", "/admin/webhook-events", client, query={"to": oldest})) == []
    assert str(pending) in ids(api.call("GET", "/admin/webhook-events", client, query={"from": oldest}))

    foreign = api.call("GET", "/admin/webhook-events", client, query={"tenant_id": cast.tenant_b})
    assert (foreign.status, foreign.error_code) == (404, "not_found")
    operator = api.call("GET", "/admin/webhook-events", cast.claims("operator_a"))
    assert (operator.status, operator.error_code) == (403, "role_not_allowed")
    assert ids(api.call("GET", "/admin/webhook-events", cast.claims("client_b"))) == [str(in_b)]

    # Quarantined events: only the admin's read without a tenant sees them.
    admin = cast.claims("admin")
    everywhere = api.call("GET", "/admin/webhook-events", admin, query={"state": "quarantined", "limit": 200})
    found = next(item for item in everywhere.body["items"] if item["id"] == str(quarantined))
    assert (found["tenant_id"], found["quarantine_reason"], found["state"]) == (
        None,
        "unknown_merchant",
        "quarantined",
    )
    in_tenant = api.call(
        "GET", "/admin/webhook-events", admin, query={"state": "quarantined", "tenant_id": cast.tenant_a}
    )
    assert ids(in_tenant) == []
    assert ids(api.call("GET", "/admin/webhook-events", admin, query={"tenant_id": cast.tenant_b})) == [
        str(in_b)
    ]

    first = api.call("GET", "/admin/webhook-events", client, query={"limit": 3})
    second = api.call(
        "GET", "/admin/webhook-events", client, query={"limit": 3, "cursor": first.body["next_cursor"]}
    )
    assert ids(first) + ids(second) == ids(listed)
    assert second.body["next_cursor"] is None


# ---------------------------------------------------------------- replay


def test_replay_outcomes_bookkeeping_messages_and_one_audit_row(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], crediting: CreditingService
) -> None:
    drain(api, api.ingest_queue_url)
    pending = insert_raw_event(owner, cast.tenant_a)
    parked = insert_raw_event(owner, cast.tenant_b)
    park(owner, parked)
    processed = insert_raw_event(owner, cast.tenant_a)
    mark_processed(owner, processed)
    quarantined = insert_raw_event(owner, None)
    missing = uuid.uuid4()
    body = {
        "event_ids": [str(e) for e in (pending, parked, processed, quarantined, missing, pending)],
        "reason": "outage",
    }

    answer = api.call("POST", "/admin/webhook-events/replay", cast.claims("admin"), body=body)

    assert answer.status == 200, answer.body
    assert answer.body["results"] == [
        {"event_id": str(pending), "outcome": "queued", "tenant_id": str(cast.tenant_a), "enqueued": True},
        {"event_id": str(parked), "outcome": "queued", "tenant_id": str(cast.tenant_b), "enqueued": True},
        {
            "event_id": str(processed),
            "outcome": "already_processed",
            "tenant_id": str(cast.tenant_a),
            "enqueued": False,
        },
        {"event_id": str(quarantined), "outcome": "still_quarantined", "tenant_id": None, "enqueued": False},
        {"event_id": str(missing), "outcome": "not_found", "tenant_id": None, "enqueued": False},
    ]
    unparked = raw_row(owner, parked)
    assert (unparked["parked_at"], unparked["sweep_count"], unparked["processed"]) == (None, 0, False)
    assert unparked["last_swept_at"] is not None
    assert raw_row(owner, quarantined)["tenant_id"] is None

    requests = credit_requests(api)
    assert sorted(requests, key=lambda r: str(r.raw_event_id)) == sorted(
        [
            CreditRequest(raw_event_id=pending, tenant_id=cast.tenant_a, provider=Provider.SQUARE),
            CreditRequest(raw_event_id=parked, tenant_id=cast.tenant_b, provider=Provider.SQUARE),
        ],
        key=lambda r: str(r.raw_event_id),
    )
    # Crediting takes the messages as they are.
    for request in requests:
        assert crediting.process(request).outcome is ProcessingOutcome.ANONYMOUS
    assert raw_row(owner, parked)["processed"] is True

    (row,) = audit_rows(owner, action="webhook_event.replay", actor_user_id=cast.admin)
    assert (row["tenant_id"], row["reason"], row["target_entity_type"]) == (None, "outage", "webhook_event")
    assert [(r["event_id"], r["outcome"]) for r in row["after_state"]["results"]] == [
        (r["event_id"], r["outcome"]) for r in answer.body["results"]
    ]


def test_a_released_quarantined_event_is_credited_in_its_merchants_tenant(
    api: AdminApi,
    cast: Cast,
    owner: psycopg.Connection[Any],
    store: RawEventStore,
    crediting: CreditingService,
) -> None:
    drain(api, api.ingest_queue_url)
    merchant_id = unique("MLLATE")
    email = unique_email()
    member = seed.create_user(owner, email=email)
    stored = store_event(store, payment_event(merchant_id=merchant_id, email=email, amount=2500))
    event_id = one(stored.raw_event_id)
    assert stored.tenant_id is None
    admin = cast.claims("admin")
    replay = {"event_ids": [str(event_id)]}

    still = api.call("POST", "/admin/webhook-events/replay", admin, body=replay)
    assert still.body["results"][0]["outcome"] == "still_quarantined"
    assert credit_requests(api) == []

    merchant = connected_merchant(owner, merchant_id=merchant_id)
    released = api.call("POST", "/admin/webhook-events/replay", admin, body=replay)
    assert released.body["results"] == [
        {
            "event_id": str(event_id),
            "outcome": "released",
            "tenant_id": str(merchant.tenant_id),
            "enqueued": True,
        }
    ]
    row = raw_row(owner, event_id)
    assert (row["tenant_id"], row["quarantine_reason"]) == (merchant.tenant_id, None)
    assert row["released_at"] is not None

    (request,) = credit_requests(api)
    assert request == CreditRequest(
        raw_event_id=event_id, tenant_id=merchant.tenant_id, provider=Provider.SQUARE
    )
    result = crediting.process(request)
    assert (result.outcome, result.points_earned) == (ProcessingOutcome.CREDITED, 25)
    wallet = one(
        owner.execute(
            "SELECT tenant_id, points_balance FROM loyalty.wallets WHERE user_id = %s", (member,)
        ).fetchone()
    )
    assert wallet == {"tenant_id": merchant.tenant_id, "points_balance": 25}

    again = api.call("POST", "/admin/webhook-events/replay", admin, body=replay)
    assert again.body["results"][0]["outcome"] == "already_processed"
    assert credit_requests(api) == []
    assert len(audit_rows(owner, action="webhook_event.replay", actor_user_id=cast.admin)) == 3


def test_a_release_is_one_way_and_only_to_the_merchants_tenant(
    cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    merchant = connected_merchant(owner)
    event = payment_event(merchant_id=merchant.merchant_id)
    quarantined = insert_raw_event(owner, None, event)  # stored before the merchant connected
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        owner.execute(
            "UPDATE pos.pos_webhook_events_raw SET tenant_id = %s, quarantine_reason = NULL WHERE id = %s",
            (cast.tenant_a, quarantined),
        )
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET tenant_id = %s, quarantine_reason = NULL,"
        " released_at = '2000-01-01Z' WHERE id = %s",
        (merchant.tenant_id, quarantined),
    )
    row = raw_row(owner, quarantined)
    assert row["released_at"] > datetime.now(UTC) - timedelta(minutes=5)  # set by the trigger
    for statement, params in (
        (
            "UPDATE pos.pos_webhook_events_raw SET tenant_id = NULL, quarantine_reason = 'unknown_merchant'"
            " WHERE id = %s",
            (quarantined,),
        ),
        ("UPDATE pos.pos_webhook_events_raw SET released_at = now() WHERE id = %s", (quarantined,)),
    ):
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            owner.execute(statement, params)


def test_a_failed_send_leaves_the_replayed_event_to_the_sweeper(
    api: AdminApi,
    cast: Cast,
    owner: psycopg.Connection[Any],
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drain(api, api.ingest_queue_url)
    parked = insert_raw_event(owner, cast.tenant_a)
    park(owner, parked)

    def unavailable(**_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")

    with monkeypatch.context() as patch:
        patch.setattr(api.module.services.sqs_client, "send_message_batch", unavailable)
        answer = api.call(
            "POST", "/admin/webhook-events/replay", cast.claims("admin"), body={"event_ids": [str(parked)]}
        )
    assert answer.status == 200, answer.body
    assert answer.body["results"][0] | {"enqueued": None} == {
        "event_id": str(parked),
        "outcome": "queued",
        "tenant_id": str(cast.tenant_a),
        "enqueued": None,
    }
    assert answer.body["results"][0]["enqueued"] is False
    assert credit_requests(api) == []
    row = raw_row(owner, parked)
    assert (row["processed"], row["parked_at"]) == (False, None)
    assert len(audit_rows(owner, action="webhook_event.replay", actor_user_id=cast.admin)) == 1

    # The outbox sweeper picks it up (after its grace period: none here) and sends it.
    connections = database.connections("pos_gateway_sweeper")
    try:
        sweeper = OutboxSweeper(
            StuckEventClaims(connections),
            CreditRequestQueue(api.ingest_queue_url, api.sqs),
            SweepPolicy(grace_seconds=0, max_sweeps=5, batch_size=100, max_batches=10),
        )
        sweeper.sweep()
    finally:
        connections.close()
    assert CreditRequest(
        raw_event_id=parked, tenant_id=cast.tenant_a, provider=Provider.SQUARE
    ) in credit_requests(api)


@pytest.mark.parametrize("who", ["client_a", "operator_a", "suspended_client_a"])
def test_only_a_platform_admin_replays(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], who: str
) -> None:
    pending = insert_raw_event(owner, cast.tenant_a)
    park(owner, pending)
    answer = api.call(
        "POST", "/admin/webhook-events/replay", cast.claims(who), body={"event_ids": [str(pending)]}
    )
    assert (answer.status, answer.error_code) == (403, "role_not_allowed")
    assert raw_row(owner, pending)["parked_at"] is not None
    assert audit_rows(owner, action="webhook_event.replay", actor_user_id=getattr(cast, who)) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"event_ids": []}, "body.event_ids"),
        ({"event_ids": [str(uuid.uuid4()) for _ in range(101)]}, "body.event_ids"),
        ({"event_ids": ["not-a-uuid"]}, "body.event_ids.0"),
        ({"event_ids": [str(uuid.uuid4())], "reason": ""}, "body.reason"),
        ({"event_ids": [str(uuid.uuid4())], "extra": 1}, "body.extra"),
        ({}, "body.event_ids"),
    ],
)
def test_invalid_replays_are_refused_and_write_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any], loc: str
) -> None:
    answer = api.call("POST", "/admin/webhook-events/replay", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert loc in [field["loc"] for field in answer.body["error"]["fields"]]
    assert audit_rows(owner, actor_user_id=cast.admin) == []


def test_the_replay_function_is_the_admins_and_needs_no_tenant_context(
    database: Database, owner: psycopg.Connection[Any]
) -> None:
    function = one(
        owner.execute(
            "SELECT prosecdef, pg_get_userbyid(proowner) AS owner, proconfig,"
            " has_function_privilege('public', oid, 'EXECUTE') AS public_execute"
            " FROM pg_proc WHERE oid = 'pos.replay_raw_events(uuid[])'::regprocedure"
        ).fetchone()
    )
    assert function == {
        "prosecdef": True,
        "owner": "pos_gateway_migrator",
        "proconfig": ["search_path=pg_catalog, pg_temp"],
        "public_execute": False,
    }
    for role in ("pos_gateway_ingest", "pos_gateway_crediting", "pos_gateway_sweeper"):
        with database.connect_as(role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM pos.replay_raw_events(ARRAY[gen_random_uuid()])")
    with database.connect_as("pos_gateway_admin") as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(uuid.uuid4()),))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="without a tenant context"):
                conn.execute("SELECT * FROM pos.replay_raw_events(ARRAY[gen_random_uuid()])")
        rows = conn.execute("SELECT outcome FROM pos.replay_raw_events(ARRAY[gen_random_uuid()])").fetchall()
        assert rows == [{"outcome": "not_found"}]


# ---------------------------------------------------------------- dead-letter queue


def fill_dead_letter_queue(api: AdminApi, n: int) -> list[str]:
    bodies = [
        CreditRequest(raw_event_id=uuid.uuid4(), tenant_id=uuid.uuid4(), provider=Provider.SQUARE).to_json()
        for _ in range(n)
    ]
    for body in bodies:
        api.sqs.send_message(QueueUrl=api.dead_letter_queue_url, MessageBody=body)
    return bodies


def test_dlq_depth_and_redrive_to_the_ingest_queue(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    drain(api, api.ingest_queue_url)
    drain(api, api.dead_letter_queue_url)
    bodies = fill_dead_letter_queue(api, 3)
    admin = cast.claims("admin")

    depth = api.call("GET", "/admin/dlq", admin)
    assert depth.status == 200, depth.body
    assert depth.body == {
        "dead_letter_queue": {"visible": 3, "in_flight": 0, "delayed": 0},
        "ingest_queue": {"visible": 0, "in_flight": 0, "delayed": 0},
    }
    (read,) = audit_rows(owner, action="platform.read", actor_user_id=cast.admin)
    assert (read["target_entity_type"], read["tenant_id"]) == ("dlq", None)

    moved = api.call("POST", "/admin/dlq/redrive", admin, body={"max_messages": 2, "reason": "bug fixed"})
    assert moved.status == 200, moved.body
    assert moved.body == {"moved": 2, "remaining": 1, "interrupted": False}
    after = api.call("GET", "/admin/dlq", admin).body
    assert (after["dead_letter_queue"]["visible"], after["ingest_queue"]["visible"]) == (1, 2)

    rest = api.call("POST", "/admin/dlq/redrive", admin)  # no body: the default batch
    assert rest.body == {"moved": 1, "remaining": 0, "interrupted": False}
    assert sorted(drain(api, api.ingest_queue_url)) == sorted(bodies)

    first, second = audit_rows(owner, action="dlq.redrive", actor_user_id=cast.admin)
    assert (first["tenant_id"], first["reason"], first["target_entity_id"]) == (
        None,
        "bug fixed",
        api.dead_letter_queue_url.rsplit("/", 1)[-1],
    )
    assert first["after_state"] == {"moved": 2, "remaining": 1, "max_messages": 2, "interrupted": False}
    assert (second["after_state"]["moved"], second["after_state"]["max_messages"]) == (1, 100)


def test_a_redrive_interrupted_midway_audits_what_moved(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    drain(api, api.ingest_queue_url)
    drain(api, api.dead_letter_queue_url)
    fill_dead_letter_queue(api, 15)
    client = api.module.services.sqs_client
    real_send = client.send_message_batch
    calls = {"n": 0}

    def second_batch_fails(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch"
            )
        return real_send(**kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(client, "send_message_batch", second_batch_fails)
        answer = api.call("POST", "/admin/dlq/redrive", cast.claims("admin"), body={"max_messages": 50})
    assert answer.status == 200, answer.body
    assert (answer.body["moved"], answer.body["interrupted"]) == (10, True)
    # The five received in the failed batch are in flight in the dead-letter queue until they time out.
    assert answer.body["remaining"] == 5
    (row,) = audit_rows(owner, action="dlq.redrive", actor_user_id=cast.admin)
    assert (row["after_state"]["moved"], row["after_state"]["interrupted"]) == (10, True)
    assert len(drain(api, api.ingest_queue_url)) == 10

    def always_fails(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "ReceiveMessage")

    with monkeypatch.context() as patch:
        patch.setattr(client, "receive_message", always_fails)
        down = api.call("POST", "/admin/dlq/redrive", cast.claims("admin"))
        assert (down.status, down.error_code) == (503, "queue_unavailable")
        depth = api.call("GET", "/admin/dlq", cast.claims("admin"))
    assert len(audit_rows(owner, action="dlq.redrive", actor_user_id=cast.admin)) == 1
    assert depth.status == 200  # get_queue_attributes still answers


@pytest.mark.parametrize("who", ["client_a", "operator_a"])
def test_only_a_platform_admin_sees_or_redrives_the_dlq(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], who: str
) -> None:
    drain(api, api.dead_letter_queue_url)
    fill_dead_letter_queue(api, 1)
    for method, path in (("GET", "/admin/dlq"), ("POST", "/admin/dlq/redrive")):
        answer = api.call(method, path, cast.claims(who))
        assert (answer.status, answer.error_code) == (403, "role_not_allowed"), path
    assert audit_rows(owner, actor_user_id=getattr(cast, who)) == []
    depth = api.call("GET", "/admin/dlq", cast.claims("admin")).body
    assert depth["dead_letter_queue"]["visible"] == 1


@pytest.mark.parametrize(
    "body", [{"max_messages": 0}, {"max_messages": 1001}, {"max_messages": "5"}, {"max_messages": 5, "x": 1}]
)
def test_invalid_redrives_are_refused_and_write_nothing(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any]
) -> None:
    answer = api.call("POST", "/admin/dlq/redrive", cast.claims("admin"), body=body)
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    assert audit_rows(owner, actor_user_id=cast.admin) == []
