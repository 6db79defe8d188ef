"""What every admin request goes through: size, media type and encoding checks before parsing,
the caller's standing, and reads sent to the replica when one is configured."""

from typing import Any

import psycopg
import pytest

from tests.admin_support import AdminApi, Cast, audit_rows


def adjust_path(cast: Cast) -> str:
    return f"/admin/tenants/{cast.tenant_a}/wallets/{cast.wallet_a}/adjustments"


def test_an_oversized_body_is_refused_before_parsing(api: AdminApi, cast: Cast) -> None:
    huge = b'{"reason": "' + b"x" * 70_000 + b'"}'
    answer = api.call("POST", adjust_path(cast), cast.claims("admin"), raw_body=huge)
    assert (answer.status, answer.error_code) == (413, "body_too_large")


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]
)
def test_a_body_that_is_not_json_is_refused(api: AdminApi, cast: Cast, content_type: str) -> None:
    answer = api.call(
        "POST",
        adjust_path(cast),
        cast.claims("admin"),
        raw_body=b"direction=credit",
        content_type=content_type,
    )
    assert (answer.status, answer.error_code) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "base64_encoded", "code"),
    [
        (b'{"direction": "credit", ', False, "malformed_json"),
        (b"\xa0\x0fa*\xd9\xa4", True, "malformed_json"),
        (b"[1, 2, 3]", False, "invalid_request"),
        (b"null", False, "invalid_request"),
    ],
)
def test_malformed_bodies_get_a_4xx_and_nothing_is_written(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: bytes, base64_encoded: bool, code: str
) -> None:
    answer = api.call(
        "POST", adjust_path(cast), cast.claims("admin"), raw_body=body, base64_encoded=base64_encoded
    )
    assert 400 <= answer.status < 500
    assert answer.error_code == code
    assert audit_rows(owner, target_entity_id=str(cast.wallet_a), action="wallet.adjust") == []


def test_a_request_without_claims_is_unauthenticated(api: AdminApi, cast: Cast) -> None:
    answer = api.call("GET", f"/admin/tenants/{cast.tenant_a}/wallets", None)
    assert (answer.status, answer.error_code) == (401, "unauthenticated")


def test_claims_that_do_not_fit_are_refused(api: AdminApi, cast: Cast) -> None:
    claims = {**cast.claims("client_a"), "role": "superuser"}
    answer = api.call("GET", f"/admin/tenants/{cast.tenant_a}/wallets", claims)
    assert (answer.status, answer.error_code) == (401, "invalid_claims")


def test_a_token_claiming_admin_for_a_non_admin_account_is_refused(api: AdminApi, cast: Cast) -> None:
    claims = {**cast.claims("client_a"), "role": "admin"}
    answer = api.call("GET", "/admin/users", claims)
    assert (answer.status, answer.error_code) == (403, "role_not_allowed")


def test_a_suspended_tenant_refuses_its_members_but_not_the_platform(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    owner.execute("UPDATE identity.tenants SET status = 'suspended' WHERE id = %s", (cast.tenant_a,))
    path = f"/admin/tenants/{cast.tenant_a}/wallets/{cast.wallet_a}"
    assert api.call("GET", path, cast.claims("client_a")).error_code == "tenant_not_active"
    assert api.call("GET", path, cast.claims("admin")).status == 200


def test_a_deleted_tenant_is_not_found_for_anyone(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    owner.execute("UPDATE identity.tenants SET deleted_at = now() WHERE id = %s", (cast.tenant_a,))
    path = f"/admin/tenants/{cast.tenant_a}/wallets/{cast.wallet_a}"
    assert api.call("GET", path, cast.claims("client_a")).status == 404
    assert api.call("GET", path, cast.claims("admin")).status == 404


def test_an_unknown_route_is_not_found(api: AdminApi, cast: Cast) -> None:
    assert api.call("GET", "/admin/nothing-here", cast.claims("admin")).status == 404


def test_without_a_replica_the_primary_serves_reads(api: AdminApi, cast: Cast) -> None:
    wallet = f"/admin/tenants/{cast.tenant_a}/wallets/{cast.wallet_a}"
    assert api.call("GET", wallet, cast.claims("client_a")).status == 200


def test_base64_bodies_are_decoded(api: AdminApi, cast: Cast) -> None:
    body = b'{"direction": "credit", "points": 1, "reason": "goodwill", "expected_version": 2}'
    answer = api.call("POST", adjust_path(cast), cast.claims("admin"), raw_body=body, base64_encoded=True)
    assert answer.status == 201, answer.body
