"""Tenants: the merchants whose loyalty programs the platform runs.

Only a platform admin creates, changes or deletes a tenant; a tenant's client reads its own.
Nothing is ever deleted for real: a deleted tenant keeps its row with ``deleted_at`` set and
answers 404 everywhere afterwards (the caller's standing check treats it as absent). A PATCH
changes only the fields its body names, and the audit row holds those that really changed.
"""

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    JsonValue,
    StringConstraints,
)

from pos_gateway.admin.access import not_found
from pos_gateway.admin.inputs import Name, PatchBody, Reason, RequestBody
from pos_gateway.admin.listing import contains_pattern, fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import plain_json

_SQL = queries.load(__file__, "tenants.sql")

MAX_PROFILE_KEYS = 50  # keys of the profile object itself
MAX_PROFILE_BYTES = 16 * 1024  # serialized as compact UTF-8 JSON
MAX_PROFILE_DEPTH = 5  # the profile object is depth 1; each nested object or array adds one

# ISO 3166-1 alpha-2: the officially assigned codes.
_ASSIGNED_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES = frozenset(_ASSIGNED_CODES.split())

TenantStatus = Literal["active", "suspended"]
PosProvider = Literal["square", "clover", "other"]
# The fields a PATCH may name, in the order the audit row lists them.
PATCHABLE = ("name", "country", "status", "pos_provider_preference", "onboarding_profile")
_NOT_NULL = frozenset({"name", "country", "status"})


def _assigned_country(code: str) -> str:
    if code not in COUNTRIES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


Country = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2),
    AfterValidator(_assigned_country),
]


def _bounded_profile(value: Any) -> Any:
    """Refuse a profile too wide, too deep or too large, before anything walks it recursively."""
    if not isinstance(value, dict):
        return value  # the declared type refuses it
    if len(value) > MAX_PROFILE_KEYS:
        raise ValueError(f"at most {MAX_PROFILE_KEYS} keys")
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_PROFILE_DEPTH:
            raise ValueError(f"nested at most {MAX_PROFILE_DEPTH} levels deep")
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise ValueError("not a JSON object of plain values") from exc
    if size > MAX_PROFILE_BYTES:
        raise ValueError(f"at most {MAX_PROFILE_BYTES} bytes as JSON")
    return value


OnboardingProfile = Annotated[dict[str, JsonValue], BeforeValidator(_bounded_profile)]


class Tenant(BaseModel):
    id: UUID
    name: str
    country: str
    status: TenantStatus
    pos_provider_preference: PosProvider | None
    onboarding_profile: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None  # set only in the answer to DELETE (and in lists with include_deleted)


class TenantPage(BaseModel):
    items: list[Tenant]
    next_cursor: str | None


class NewTenant(RequestBody):
    name: Name
    country: Country = "US"
    pos_provider_preference: PosProvider | None = None
    onboarding_profile: OnboardingProfile | None = None


class TenantPatch(PatchBody):
    """Only the fields present change; ``null`` clears the preference or the profile."""

    patchable = PATCHABLE
    not_null = _NOT_NULL

    name: Name | None = None
    country: Country | None = None
    status: TenantStatus | None = None
    pos_provider_preference: PosProvider | None = None
    onboarding_profile: OnboardingProfile | None = None
    reason: Reason | None = None  # kept in the audit row (say why a tenant is suspended)


def _tenant(row: Mapping[str, Any]) -> Tenant:
    return Tenant(**{**row, "onboarding_profile": plain_json(row["onboarding_profile"])})


def _profile_parameter(profile: Mapping[str, Any] | None) -> Jsonb | None:
    return None if profile is None else Jsonb(profile)


def get_tenant(connection: Connection, tenant_id: UUID) -> Tenant:
    row = connection.execute(_SQL.get_tenant.sql, {"tenant_id": tenant_id}).fetchone()
    if row is None:
        raise not_found("tenant")
    return _tenant(row)


def list_tenants(
    connection: Connection,
    *,
    q: str | None,
    status: TenantStatus | None,
    include_deleted: bool,
    limit: int,
    cursor: str | None,
) -> TenantPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_tenants.sql,
        {"pattern": contains_pattern(q) if q else None, "status": status, "include_deleted": include_deleted},
        limit=limit,
        cursor=cursor,
    )
    return TenantPage(items=[_tenant(row) for row in rows], next_cursor=following)


def create_tenant(change: Change, tenant_id: UUID, request: NewTenant) -> Tenant:
    """``change`` runs in the new tenant's context (``tenant_id``), which does not exist yet."""
    row = change.connection.execute(
        _SQL.insert_tenant.sql,
        {
            "tenant_id": tenant_id,
            "name": request.name,
            "country": request.country,
            "pos_provider_preference": request.pos_provider_preference,
            "onboarding_profile": _profile_parameter(request.onboarding_profile),
        },
    ).fetchone()
    if row is None:
        raise LookupError("INSERT ... RETURNING gave no row")
    tenant = _tenant(row)
    change.audit(
        "tenant.create",
        target_type="tenant",
        target_id=tenant.id,
        before=None,
        after=tenant.model_dump(include=set(PATCHABLE)),
    )
    return tenant


def _locked(change: Change, tenant_id: UUID) -> Tenant:
    row = change.connection.execute(_SQL.lock_tenant.sql, {"tenant_id": tenant_id}).fetchone()
    if row is None:
        raise not_found("tenant")
    return _tenant(row)


def update_tenant(change: Change, tenant_id: UUID, patch: TenantPatch) -> Tenant:
    before = _locked(change, tenant_id)
    changed = {field: value for field, value in patch.requested().items() if getattr(before, field) != value}
    after = before
    if changed:
        parameters: dict[str, Any] = {"tenant_id": tenant_id}
        for field in PATCHABLE:
            parameters[f"set_{field}"] = field in changed
            parameters[field] = changed.get(field)
        parameters["onboarding_profile"] = _profile_parameter(changed.get("onboarding_profile"))
        row = change.connection.execute(_SQL.update_tenant.sql, parameters).fetchone()
        if row is None:
            raise not_found("tenant")
        after = _tenant(row)
    # A body that changes nothing is still recorded (with empty states): the request was made.
    change.audit(
        "tenant.update",
        target_type="tenant",
        target_id=tenant_id,
        before={field: getattr(before, field) for field in changed},
        after={field: getattr(after, field) for field in changed},
        reason=patch.reason,
    )
    return after


def delete_tenant(change: Change, tenant_id: UUID) -> Tenant:
    before = _locked(change, tenant_id)
    row = change.connection.execute(_SQL.delete_tenant.sql, {"tenant_id": tenant_id}).fetchone()
    if row is None:
        raise not_found("tenant")
    after = _tenant(row)
    change.audit(
        "tenant.delete",
        target_type="tenant",
        target_id=tenant_id,
        before={"name": before.name, "status": before.status, "deleted_at": None},
        after={"name": after.name, "status": after.status, "deleted_at": after.deleted_at},
    )
    return after
