"""Claims → Principal, and the operator policy, without I/O."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from pos_gateway.auth import (
    AccessDenied,
    CallerStanding,
    Principal,
    Role,
    principal_from_claims,
    principal_from_event,
    require_tenant_context,
    require_tenant_operator,
)

EVENTS = Path(__file__).resolve().parents[2] / "events" / "wallet_api"
USER = uuid.uuid4()
TENANT = uuid.uuid4()


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": str(USER),
        "role": "pos_operator",
        "tenant_id": str(TENANT),
        "iss": "https://issuer.example.test",
        "aud": "pos-gateway",
        "exp": "1924992000",
        "scope": "wallets:redeem",
    }
    return {key: value for key, value in {**base, **overrides}.items() if value is not ...}


# ---------------------------------------------------------------- claims


def test_operator_claims_make_a_principal():
    assert principal_from_claims(claims()) == Principal(USER, Role.POS_OPERATOR, TENANT)


@pytest.mark.parametrize("tenant", [..., "", None])
def test_an_admin_may_come_without_a_tenant(tenant):
    principal = principal_from_claims(claims(role="admin", tenant_id=tenant))
    assert (principal.is_admin, principal.tenant_id) == (True, None)


@pytest.mark.parametrize("found", [None, {}])
def test_no_claims_is_unauthenticated(found):
    with pytest.raises(AccessDenied) as caught:
        principal_from_claims(found)
    assert (caught.value.status_code, caught.value.code) == (401, "unauthenticated")


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"sub": ...}, "sub"),
        ({"sub": "auth0|12345"}, "sub"),
        ({"role": "owner"}, "role"),
        ({"role": ...}, "role"),
        ({"tenant_id": "tenant-1"}, "tenant_id"),
        ({"tenant_id": ...}, ""),  # a tenant role without its tenant
        ({"role": "client", "tenant_id": ""}, ""),
    ],
)
def test_claims_outside_the_contract_are_refused(overrides, loc):
    with pytest.raises(AccessDenied) as caught:
        principal_from_claims(claims(**overrides))
    assert (caught.value.status_code, caught.value.code) == (401, "invalid_claims")
    assert loc in [detail["loc"] for detail in caught.value.fields]


def test_the_sample_event_carries_the_authorizer_claims():
    event = json.loads((EVENTS / "redeem_points.json").read_text())
    principal = principal_from_event(APIGatewayProxyEventV2(event))
    assert principal.role is Role.POS_OPERATOR
    assert principal.tenant_id is not None


def test_an_event_without_an_authorizer_is_unauthenticated():
    event = json.loads((EVENTS / "redeem_points.json").read_text())
    del event["requestContext"]["authorizer"]
    with pytest.raises(AccessDenied, match="no verified claims"):
        principal_from_event(APIGatewayProxyEventV2(event))


# ---------------------------------------------------------------- policy


def standing(**overrides: Any) -> CallerStanding:
    values: dict[str, Any] = {
        "user_found": True,
        "user_status": "active",
        "user_role": "pos_operator",
        "is_pos_operator": True,
        "tenant_status": "active",
    }
    return CallerStanding(**{**values, **overrides})


OPERATOR = Principal(USER, Role.POS_OPERATOR, TENANT)
ADMIN = Principal(USER, Role.ADMIN, TENANT)


def test_an_active_operator_of_the_tenant_is_allowed():
    assert require_tenant_context(OPERATOR) == TENANT
    require_tenant_operator(OPERATOR, standing())


def test_an_active_admin_acting_in_a_tenant_is_allowed():
    require_tenant_operator(ADMIN, standing(user_role="admin", is_pos_operator=False))


@pytest.mark.parametrize(
    ("principal", "code"),
    [
        (Principal(USER, Role.CLIENT, TENANT), "role_not_allowed"),
        (Principal(USER, Role.ADMIN, None), "tenant_required"),
    ],
)
def test_the_claims_alone_can_refuse(principal, code):
    with pytest.raises(AccessDenied) as caught:
        require_tenant_context(principal)
    assert (caught.value.status_code, caught.value.code) == (403, code)


@pytest.mark.parametrize(
    ("principal", "found", "code"),
    [
        (OPERATOR, standing(user_found=False, user_status=None, user_role=None), "user_not_active"),
        (OPERATOR, standing(user_status="suspended"), "user_suspended"),
        (OPERATOR, standing(user_status="pending_approval"), "user_not_active"),
        (OPERATOR, standing(is_pos_operator=False), "not_a_tenant_operator"),
        (OPERATOR, standing(tenant_status="suspended"), "tenant_not_active"),
        (OPERATOR, standing(tenant_status=None), "tenant_not_active"),
        (ADMIN, standing(user_role="pos_operator"), "role_not_allowed"),
        (ADMIN, standing(user_role="admin", user_status="suspended"), "user_suspended"),
    ],
)
def test_the_database_standing_can_refuse(principal, found, code):
    with pytest.raises(AccessDenied) as caught:
        require_tenant_operator(principal, found)
    assert (caught.value.status_code, caught.value.code) == (403, code)
