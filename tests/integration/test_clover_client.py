"""The Clover REST client against the fake Clover over real HTTP on loopback."""

import socket
from collections.abc import Iterator

import pytest

from local.fake_clover import FakeClover, Scripted, clover_payment, clover_refund
from pos_gateway.providers.clover import (
    PAYMENT_EXPANSIONS,
    CloverApiError,
    CloverClient,
    CloverNotFound,
    CloverUnauthorized,
    ProviderBusy,
)

MERCHANT = "MCLIENT000001"
TOKEN = "clover-token-under-test"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeClover]:
    with FakeClover() as fake:
        yield fake


@pytest.fixture
def clover(server: FakeClover) -> FakeClover:
    server.reset()
    server.grant_token(MERCHANT, TOKEN)
    return server


@pytest.fixture
def client(clover: FakeClover) -> CloverClient:
    return CloverClient(
        clover.base_url,
        connect_timeout=1.0,
        read_timeout=0.3,
        rate_limited_backoff_seconds=11,
        unavailable_backoff_seconds=33,
    )


def test_a_payment_comes_with_its_refunds_and_customer_contacts(
    clover: FakeClover, client: CloverClient
) -> None:
    clover.put_payment(
        MERCHANT,
        clover_payment(
            "PAY1",
            amount=2500,
            email="a@example.com",
            phone="4155550134",
            refunds=[clover_refund(amount=500)],
        ),
    )

    payment = client.get_payment(MERCHANT, "PAY1", TOKEN)

    assert (payment.id, payment.amount, payment.completed) == ("PAY1", 2500, True)
    assert [r.amount for r in payment.refunds.elements] == [500]
    assert payment.order is not None
    [customer] = payment.order.customers.elements
    assert customer.email_addresses.elements[0].email_address == "a@example.com"
    assert customer.phone_numbers.elements[0].phone_number == "4155550134"
    [request] = clover.requests
    assert request.path == f"/v3/merchants/{MERCHANT}/payments/PAY1"
    assert request.bearer_valid
    assert request.expansions == list(PAYMENT_EXPANSIONS)


def test_ids_are_escaped_into_the_path(clover: FakeClover, client: CloverClient) -> None:
    with pytest.raises(CloverNotFound):
        client.get_payment(MERCHANT, "../../orders/X?expand=all", TOKEN)

    assert clover.requests[0].path == f"/v3/merchants/{MERCHANT}/payments/..%2F..%2Forders%2FX%3Fexpand%3Dall"


def test_a_refused_token_is_unauthorized(clover: FakeClover, client: CloverClient) -> None:
    clover.put_payment(MERCHANT, clover_payment("PAY1"))

    with pytest.raises(CloverUnauthorized) as refused:
        client.get_payment(MERCHANT, "PAY1", "stale-token")

    assert "stale-token" not in str(refused.value)


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        (Scripted(429, {"Retry-After": "7"}), 7),
        (Scripted(429), 11),
        (Scripted(500), 33),
        (Scripted(503, {"Retry-After": "120"}), 120),
        (Scripted(504), 33),
        (Scripted(hang=True), 33),
    ],
)
def test_busy_answers_carry_a_backoff(
    clover: FakeClover, client: CloverClient, answer: Scripted, wait: int
) -> None:
    clover.script(answer)

    with pytest.raises(ProviderBusy) as busy:
        client.get_payment(MERCHANT, "PAY1", TOKEN)

    assert busy.value.retry_after_seconds == wait
    assert len(clover.requests) == 1  # no retry inside the client


def test_an_unreachable_clover_is_busy() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CloverClient(f"http://127.0.0.1:{port}", connect_timeout=0.5, read_timeout=0.5)

    with pytest.raises(ProviderBusy):
        client.get_payment(MERCHANT, "PAY1", TOKEN)


def test_other_refusals_and_unreadable_payments_are_api_errors(
    clover: FakeClover, client: CloverClient
) -> None:
    clover.script(
        Scripted(400, body={"message": "bad expand"}), Scripted(200, body={"id": "PAY1", "amount": -1})
    )

    with pytest.raises(CloverApiError, match="400"):
        client.get_payment(MERCHANT, "PAY1", TOKEN)
    with pytest.raises(CloverApiError, match="invalid amount, createdTime, result"):
        client.get_payment(MERCHANT, "PAY1", TOKEN)


def test_scripts_can_target_one_merchant(clover: FakeClover, client: CloverClient) -> None:
    clover.grant_token("MOTHER0000001", TOKEN)
    clover.put_payment(MERCHANT, clover_payment("PAY1"))
    clover.script(Scripted(429), merchant_id="MOTHER0000001")

    assert client.get_payment(MERCHANT, "PAY1", TOKEN).id == "PAY1"
    with pytest.raises(ProviderBusy):
        client.get_payment("MOTHER0000001", "PAY1", TOKEN)
