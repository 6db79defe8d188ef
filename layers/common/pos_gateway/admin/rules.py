"""Reward rule versions as operators manage them: list, create (inactive), activate.

A version is a rule config with the moment it takes effect (``effective_from``). Creating one
changes nothing for sales: it is an inactive draft until it is activated. Crediting uses, for a
sale at time t, the *activated* version with the latest ``effective_from`` not after t (ties: the
higher version); ``is_active`` marks the version operators made current (redemptions read it).

Activating version N means: from N's ``effective_from`` on, N is the version in force, for good.
So the activation looks at every other activated version that would outrank N (a later
``effective_from``, or the same one and a higher version number):

- one that has already taken effect (its ``effective_from`` has passed, or a reward was credited
  by it) makes the activation pointless and harmful: N would never apply to a new sale, and
  would only reprice late events from the past window between the two versions. It is refused
  with 409 ``rule_superseded``; to go back to an older config, create a new version with that
  config (it takes effect from now) and activate it.
- one only scheduled (``effective_from`` still ahead, nothing credited by it) is cancelled in
  the same transaction: it goes back to an inactive, never-activated draft (it can be activated
  again later) and the answer and the audit row list it under ``unscheduled_versions``. This is
  how an operator calls off a rule change announced for a future date.

Otherwise the current active version is retired and N becomes active; ``activated_at`` is set on
its first activation and kept on a later one. An older version that still ranks first (after
its successors were unscheduled) may be activated again that way.

A version whose ``effective_from`` has already passed applies, once activated, to sales from that
moment on that are credited after the activation (late events, backfill); sales already credited
keep their points. Activating an active version answers 409 ``rule_already_active``.

Activations of one tenant are serialized: each locks all of the tenant's versions (in version
order) before it reads them, so two racing activations run one after the other and the second
decides on what the first committed. Should anything slip past that (a writer that does not take
the locks), the unique index on the active version refuses the second and the answer is 409
``concurrent_activation``, never a server error.
"""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, PlainSerializer

from pos_gateway.admin.access import not_found
from pos_gateway.admin.inputs import RequestBody
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError
from pos_gateway.loyalty.rules import RuleConfig
from pos_gateway.times import Instant

_SQL = queries.load(__file__, "rules.sql")

ONE_ACTIVE_INDEX = "reward_rules_one_active_per_tenant"
VERSION_KEY = "reward_rules_tenant_version_key"
CREATE_ATTEMPTS = 3


def _document(config: RuleConfig) -> dict[str, object]:
    return config.to_document()


# The stored document, as crediting reads it (keys as in RuleConfig, the rate as a JSON number).
RuleDocument = Annotated[RuleConfig, PlainSerializer(_document, return_type=dict[str, Any])]


class RuleVersion(BaseModel):
    version: int
    id: UUID
    is_active: bool
    activated_at: datetime | None
    effective_from: datetime
    rule_config: RuleDocument = Field(description="The rule document, keys as in the request's rule_config")
    created_by: UUID | None
    created_at: datetime


class RuleVersionPage(BaseModel):
    items: list[RuleVersion]
    next_cursor: str | None


class NewRuleVersion(RequestBody):
    rule_config: RuleConfig = Field(
        description="The rule document (conversionRate, minSpendMinorUnits, maxPointsPerTransaction, "
        "minBalanceToRedeem, maxRedemptionPercentage, roundingPolicy)"
    )
    effective_from: Instant | None = Field(
        default=None, description="When the version takes effect once activated (default: now)"
    )


class Activation(BaseModel):
    rule: RuleVersion
    previous_active_version: int | None
    unscheduled_versions: list[int]


class RuleConflict(ApiError):
    status_code = 409


def list_versions(connection: Connection, *, limit: int, cursor: str | None) -> RuleVersionPage:
    rows, following = fetch_page(connection, _SQL.list_rule_versions.sql, {}, limit=limit, cursor=cursor)
    return RuleVersionPage(items=[RuleVersion(**row) for row in rows], next_cursor=following)


def create_version(change: Change, request: NewRuleVersion) -> RuleVersion:
    tenant_id = change.tenant
    parameters = {
        "tenant_id": tenant_id,
        "rule_config": Jsonb(request.rule_config.to_document()),
        "effective_from": request.effective_from,
        "created_by": change.actor.user_id,
    }
    row = None
    for _ in range(CREATE_ATTEMPTS):
        try:
            # A savepoint: a version number taken by a concurrent creation is retried.
            with change.connection.transaction():
                row = change.connection.execute(_SQL.insert_rule_version.sql, parameters).fetchone()
            break
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name != VERSION_KEY:
                raise
    else:
        raise RuleConflict(
            "rule versions are being created concurrently; try again", code="concurrent_rule_change"
        )
    if row is None:
        raise LookupError("INSERT ... RETURNING gave no row")
    created = RuleVersion(**row)
    change.audit(
        "rule.create",
        target_type="reward_rule",
        target_id=created.id,
        before=None,
        after={
            "version": created.version,
            "is_active": created.is_active,
            "effective_from": created.effective_from,
            "rule_config": created.rule_config.to_document(),
        },
    )
    return created


def _outranks(row: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether rule_in_force would prefer ``row`` over ``target`` wherever both apply."""
    return bool((row["effective_from"], row["version"]) > (target["effective_from"], target["version"]))


def _superseded(target: dict[str, Any], by: dict[str, Any]) -> RuleConflict:
    return RuleConflict(
        f"version {target['version']} takes effect from {target['effective_from'].isoformat()}, before "
        f"version {by['version']} (in force from {by['effective_from'].isoformat()}): activated, it "
        "would never apply to a new sale. Create a new version with this rule_config and activate it.",
        [{"loc": "path.version", "type": "rule_superseded", "msg": f"superseded by version {by['version']}"}],
        code="rule_superseded",
    )


def activate(change: Change, version: int) -> Activation:
    tenant_id = change.tenant
    rows = [
        dict(row) for row in change.connection.execute(_SQL.lock_rule_versions.sql, {"tenant_id": tenant_id})
    ]
    target = next((row for row in rows if row["version"] == version), None)
    if target is None:
        raise not_found("rule version")
    if target["is_active"]:
        raise RuleConflict(f"version {version} is already the active version", code="rule_already_active")
    current = next((row for row in rows if row["is_active"]), None)
    outranking = [
        row
        for row in rows
        if row["activated_at"] is not None and row is not target and _outranks(row, target)
    ]
    in_effect = [row for row in outranking if row["applied"] or not row["scheduled"]]
    if in_effect:
        raise _superseded(target, max(in_effect, key=lambda row: (row["effective_from"], row["version"])))
    unscheduled = sorted(row["version"] for row in outranking)
    try:
        if outranking:
            change.connection.execute(
                _SQL.unschedule_rule_versions.sql,
                {"tenant_id": tenant_id, "ids": [row["id"] for row in outranking]},
            )
        change.connection.execute(_SQL.retire_active_rule_version.sql, {"tenant_id": tenant_id})
        activated = change.connection.execute(
            _SQL.activate_rule_version.sql, {"tenant_id": tenant_id, "id": target["id"]}
        ).fetchone()
    except pg_errors.UniqueViolation as exc:
        if exc.diag.constraint_name != ONE_ACTIVE_INDEX:
            raise
        raise RuleConflict(
            "another activation of this tenant's rules committed first; reload and try again",
            code="concurrent_activation",
        ) from exc
    if activated is None:
        raise LookupError("the locked rule version vanished")
    previous = None if current is None else current["version"]
    after: dict[str, Any] = {"active_version": version}
    if unscheduled:
        after["unscheduled_versions"] = unscheduled
    change.audit(
        "rule.activate",
        target_type="reward_rule",
        target_id=target["id"],
        before={"active_version": previous},
        after=after,
    )
    return Activation(
        rule=RuleVersion(**activated), previous_active_version=previous, unscheduled_versions=unscheduled
    )
