"""The pull cursor: opaque, stable, bound to its seller, and refused when it is not one we issued."""

import base64
import uuid

import pytest

from pos_gateway.field import pull
from pos_gateway.field.devices import Device, SellerRole
from pos_gateway.field.pull import (
    START,
    InvalidCursor,
    Position,
    Scope,
    decode_cursor,
    encode_cursor,
    parse_pull_query,
    start_position,
)
from pos_gateway.http import ApiError

TENANT = uuid.UUID("11111111-1111-4111-8111-111111111111")
SELLER = uuid.UUID("22222222-2222-4222-8222-222222222222")
OTHER = uuid.UUID("33333333-3333-4333-8333-333333333333")


def device(role: SellerRole = SellerRole.VENDEDOR, seller: uuid.UUID = SELLER) -> Device:
    return Device(
        tenant_id=TENANT, device_id=uuid.uuid4(), seller_id=seller, role=role, currency="PEN", country="PE"
    )


@pytest.mark.parametrize(
    "position", [START, Position(1, 1), Position(757, 123_456), Position(2**64 - 1, 2**63 - 1)]
)
@pytest.mark.parametrize("scope", list(Scope))
def test_round_trips(position, scope):
    cursor = encode_cursor(position, scope, TENANT, SELLER)
    assert decode_cursor(cursor, TENANT, SELLER) == (scope, position)


def test_is_url_safe_short_and_stable():
    cursor = encode_cursor(Position(757, 123), Scope.OWN, TENANT, SELLER)
    assert cursor == encode_cursor(Position(757, 123), Scope.OWN, TENANT, SELLER)
    assert len(cursor) <= pull.MAX_CURSOR_LENGTH
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # Opaque: the numbers are not readable as text.
    assert "757" not in base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("latin-1")


@pytest.mark.parametrize(("tenant", "seller"), [(OTHER, SELLER), (TENANT, OTHER)])
def test_is_bound_to_its_tenant_and_seller(tenant, seller):
    cursor = encode_cursor(Position(10, 20), Scope.OWN, TENANT, SELLER)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, tenant, seller)


def _tampered() -> list[str]:
    cursor = encode_cursor(Position(10, 20), Scope.OWN, TENANT, SELLER)
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    variants = []
    for index in (0, 1, 9, 17, len(raw) - 1):  # version, scope, xid, seq, check
        changed = bytearray(raw)
        changed[index] ^= 0x01
        variants.append(base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("="))
    return [*variants, cursor[:-2], cursor + "AA"]


@pytest.mark.parametrize(
    "garbage",
    ["garbage", "%%%", "A", "====", "x" * 65, "eyJhIjoxfQ", *_tampered()],
)
def test_refuses_garbage_with_400(garbage):
    with pytest.raises(InvalidCursor) as refused:
        decode_cursor(garbage, TENANT, SELLER)
    assert refused.value.status_code == 400
    assert refused.value.code == "invalid_cursor"


def test_refuses_an_unknown_version_scope_or_sequence_even_when_checked():
    for version, scope, seq in ((2, 0, 1), (1, 7, 1), (1, 0, 2**63)):
        payload = pull._LAYOUT.pack(version, scope, 1, seq)
        token = payload + pull._check(payload, TENANT, SELLER)
        with pytest.raises(InvalidCursor):
            decode_cursor(base64.urlsafe_b64encode(token).decode(), TENANT, SELLER)


def test_start_position_without_cursor_is_the_beginning():
    assert start_position(device(), None) == START
    assert start_position(device(), "") == START


def test_a_cursor_of_another_scope_starts_over():
    own = encode_cursor(Position(50, 60), Scope.OWN, TENANT, SELLER)
    tenant = encode_cursor(Position(50, 60), Scope.TENANT, TENANT, SELLER)
    assert start_position(device(SellerRole.VENDEDOR), own) == Position(50, 60)
    assert start_position(device(SellerRole.ADMIN_NEGOCIO), tenant) == Position(50, 60)
    # Promoted: the other sellers' records lie behind the old position.
    assert start_position(device(SellerRole.ADMIN_NEGOCIO), own) == START
    assert start_position(device(SellerRole.VENDEDOR), tenant) == START


def test_query_defaults_and_bounds():
    assert parse_pull_query(None).limit == pull.DEFAULT_LIMIT
    assert parse_pull_query({}).cursor is None
    query = parse_pull_query({"limit": "500", "cursor": "abc"})
    assert (query.limit, query.cursor) == (500, "abc")
    assert parse_pull_query({"limit": "1"}).limit == 1


@pytest.mark.parametrize("parameters", [{"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"since": "x"}])
def test_query_refuses_invalid_parameters_with_422(parameters):
    with pytest.raises(ApiError) as refused:
        parse_pull_query(parameters)
    assert refused.value.status_code == 422
    assert refused.value.code == "validation_failed"
    assert refused.value.fields
