"""RPApos connections as operators see them: create, edit, soft-delete, register the SAT device.

Secrets go one way, as for POS connections (pos_gateway.admin.connections): the RPApos password,
the API key and the SAT password come in through a request body (``SecretStr``), are sealed at
once with the credential cipher, bound to the table, column and row id
(``rpapos.rpapos_connection.<column>.<id>``, the id chosen before the insert, as the sync opens
them); the SOAP device token is sealed the moment RPApos hands it over. No answer carries a
secret in any form: a connection says ``has_password``, ``has_api_key``, ``has_sat_password`` and
``has_soap_token`` (the seed's ``hasSoapToken``, snake_case as the rest of the admin API). Audit
states name the secrets a change set as ``sealed`` (a list of names, never values).

- Creating a subdomain the tenant already has live answers 409 ``subdomain_already_connected``;
  one that was soft-deleted comes back (same id: its id map and runs stay attached), with the
  new settings and no device token.
- A PATCH changes only the fields it names (``null`` clears an optional one); new credentials put
  a connection that a sync marked ``error`` back to ``active``. A deleted connection answers 409
  ``connection_deleted``.
- Deleting needs no active run (409 ``sync_run_active``: cancel it first) and wipes the device
  token, the API key and the SAT password.
- Registering the device (Dispositivo_Registra_2) and validating the account (Cuenta_Validar_1)
  call the SOAP service with the SAT credentials (pos_gateway.rpapos.soap.sat_credentials). The
  SOAP module (and zeep) is imported only on that path: the admin API does not load it otherwise.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    StringConstraints,
)

from pos_gateway.admin.access import not_found
from pos_gateway.admin.audit import changed_fields
from pos_gateway.admin.inputs import PatchBody, RequestBody
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.crypto import CredentialCipher, DecryptionError
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError
from pos_gateway.rpapos.errors import (
    RpaposError,
    RpaposSoapError,
    RpaposUnavailable,
    SoapBadCredentials,
)

if TYPE_CHECKING:
    from pos_gateway.rpapos.soap import RpaposSoapClient

_SQL = queries.load(__file__, "rpapos.sql")

TABLE = "rpapos.rpapos_connection"
# The sealed columns, by the name of the secret they hold.
SEALED_COLUMNS: dict[str, str] = {
    "password": "password_encrypted",
    "api_key": "api_key_encrypted",
    "sat_password": "sat_password_encrypted",
    "soap_token": "soap_token_encrypted",
}
SUBDOMAIN_KEY = "rpapos_connection_tenant_subdomain_key"
DEVICE_NAME = "POS Gateway"  # pNombre_Dispositivo: how the device shows in RPApos
MAX_SECRET_LENGTH = 1024
MAX_MAP_ENTRIES = 100
SMALLINT_MAX = 2**15 - 1
INTEGER_MAX = 2**31 - 1

Status = Literal["active", "disconnected", "error"]
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters: they fit neither SQL text nor XML


def _printable_secret(value: SecretStr) -> SecretStr:
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value.get_secret_value()):
        raise ValueError("may not contain control characters")
    return value


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (e.g. America/Guatemala)") from None
    return value


Secret = Annotated[
    SecretStr, Field(min_length=1, max_length=MAX_SECRET_LENGTH), AfterValidator(_printable_secret)
]
Subdomain = Annotated[
    str,
    StringConstraints(max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
    Field(description="https://{subdomain}.2rpa.com: one DNS label, lower case"),
]
Login = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=_PRINTABLE)
]
Timezone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"),
    AfterValidator(_known_timezone),
    Field(description="IANA time zone of the RPApos tenant's local times, e.g. America/Guatemala"),
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217 code")]
SyncInterval = Annotated[
    int,
    Field(
        strict=True,
        ge=5,
        le=10_080,
        description="Minutes between scheduled syncs (the scheduler looks every 5)",
    ),
]
Workstation = Annotated[
    int, Field(strict=True, ge=1, le=SMALLINT_MAX, description="RPApos workstation, needed by Catalogo_4")
]
MapText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
TipoGestionMap = Annotated[
    dict[MapText, MapText],
    Field(
        max_length=MAX_MAP_ENTRIES, description="RPApos order type (tipo_gestion code) -> FlowPOS order type"
    ),
]


class RpaposConnection(BaseModel):
    id: UUID
    subdomain: str
    usuario: str
    timezone: str
    currency_code: str
    status: Status
    sync_interval_minutes: int | None
    tipo_gestion_map: dict[str, str]
    sat_usuario: str | None
    estacion_trabajo: int | None
    localizacion_id: int | None = Field(description="From the SAT device registration")
    conexion_db: int | None
    conexion_mainframe: int | None
    has_password: bool
    has_api_key: bool
    has_sat_password: bool
    has_soap_token: bool = Field(description="The device is registered (the seed's hasSoapToken)")
    last_synced_at: datetime | None
    last_full_sync_at: datetime | None
    last_error: str | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class RpaposConnectionPage(BaseModel):
    items: list[RpaposConnection]
    next_cursor: str | None


class NewRpaposConnection(RequestBody):
    subdomain: Subdomain
    usuario: Login
    password: Secret
    api_key: Secret | None = None
    timezone: Timezone
    currency_code: CurrencyCode
    sync_interval_minutes: SyncInterval | None = None
    tipo_gestion_map: TipoGestionMap = Field(default_factory=dict)
    sat_usuario: Login | None = None
    sat_password: Secret | None = None
    estacion_trabajo: Workstation | None = None


# The fields a PATCH may name; those in _NOT_NULL may not be cleared.
PATCHABLE = (
    "usuario",
    "password",
    "api_key",
    "timezone",
    "currency_code",
    "sync_interval_minutes",
    "tipo_gestion_map",
    "sat_usuario",
    "sat_password",
    "estacion_trabajo",
)
_NOT_NULL = ("usuario", "password", "timezone", "currency_code", "tipo_gestion_map")
_SECRETS = ("password", "api_key", "sat_password")
_CREDENTIALS = frozenset({"usuario", "password", "api_key", "sat_usuario", "sat_password"})


class RpaposConnectionPatch(PatchBody):
    """Only the fields present change; ``null`` clears an optional one (API key, SAT login,
    workstation, schedule). The subdomain never changes: connect another one instead."""

    patchable = PATCHABLE
    not_null = frozenset(_NOT_NULL)

    usuario: Login | None = None
    password: Secret | None = None
    api_key: Secret | None = None
    timezone: Timezone | None = None
    currency_code: CurrencyCode | None = None
    sync_interval_minutes: SyncInterval | None = None
    tipo_gestion_map: TipoGestionMap | None = None
    sat_usuario: Login | None = None
    sat_password: Secret | None = None
    estacion_trabajo: Workstation | None = None


class AccountValidation(BaseModel):
    valid: bool = Field(description="RPApos accepted the SAT credentials (Cuenta_Validar_1)")
    message: str | None = Field(description="RPApos's own words")


class RpaposConflict(ApiError):
    status_code = 409


class RpaposRefused(ApiError):
    """RPApos answered, but not with what the API needs."""

    status_code = 502
    code = "rpapos_bad_gateway"


class RpaposDown(ApiError):
    status_code = 503
    code = "rpapos_unavailable"


# ---------------------------------------------------------------- reads


def get_connection(connection: Connection, connection_id: UUID) -> RpaposConnection:
    row = connection.execute(_SQL.get_connection.sql, {"connection_id": connection_id}).fetchone()
    if row is None:
        raise not_found("RPApos connection")
    return RpaposConnection(**row)


def list_connections(
    connection: Connection, *, include_deleted: bool, limit: int, cursor: str | None
) -> RpaposConnectionPage:
    rows, following = fetch_page(
        connection,
        _SQL.list_connections.sql,
        {"include_deleted": include_deleted},
        limit=limit,
        cursor=cursor,
    )
    return RpaposConnectionPage(items=[RpaposConnection(**row) for row in rows], next_cursor=following)


# ---------------------------------------------------------------- changes


def _seal(cipher: CredentialCipher, connection_id: UUID, secret: str, name: str) -> str:
    return cipher.encrypt(secret, table=TABLE, column=SEALED_COLUMNS[name], row_id=str(connection_id))


def _open(cipher: CredentialCipher, row: Mapping[str, Any], name: str) -> str | None:
    envelope = row[SEALED_COLUMNS[name]]
    if not envelope:
        return None
    try:
        return cipher.decrypt(envelope, table=TABLE, column=SEALED_COLUMNS[name], row_id=str(row["id"]))
    except DecryptionError:  # a retired key, or an envelope that was moved: only new credentials help
        raise RpaposConflict(
            f"the connection's {name} can no longer be opened: set it again (PATCH)",
            code="credentials_unreadable",
        ) from None


def _sealed_names(row: Mapping[str, Any]) -> list[str]:
    return [name for name, column in SEALED_COLUMNS.items() if row.get(column)]


def _audited(view: RpaposConnection) -> dict[str, Any]:
    """A connection's audit state: its settings and the names of the secrets it holds."""
    flags = {
        "password": view.has_password,
        "api_key": view.has_api_key,
        "sat_password": view.has_sat_password,
        "soap_token": view.has_soap_token,
    }
    return {
        **view.model_dump(
            mode="json",
            include={
                "subdomain",
                "usuario",
                "timezone",
                "currency_code",
                "status",
                "sync_interval_minutes",
                "tipo_gestion_map",
                "sat_usuario",
                "estacion_trabajo",
                "deleted_at",
            },
        ),
        "sealed": [name for name, held in flags.items() if held],
    }


def create_connection(
    change: Change, request: NewRpaposConnection, cipher: CredentialCipher
) -> RpaposConnection:
    existing = change.connection.execute(
        _SQL.lock_connection_by_subdomain.sql, {"subdomain": request.subdomain}
    ).fetchone()
    if existing is not None and existing["deleted_at"] is None:
        raise _subdomain_taken(request.subdomain)
    before = None if existing is None else _audited(get_connection(change.connection, existing["id"]))
    # The id first: the envelopes are bound to it (a revived connection keeps its own).
    connection_id: UUID = uuid4() if existing is None else existing["id"]
    parameters = {
        "id": connection_id,
        "tenant_id": change.tenant,
        "subdomain": request.subdomain,
        "usuario": request.usuario,
        "password_encrypted": _seal(cipher, connection_id, request.password.get_secret_value(), "password"),
        "api_key_encrypted": ""
        if request.api_key is None
        else _seal(cipher, connection_id, request.api_key.get_secret_value(), "api_key"),
        "timezone": request.timezone,
        "currency_code": request.currency_code,
        "sync_interval_minutes": request.sync_interval_minutes,
        "tipo_gestion_map": Jsonb(request.tipo_gestion_map),
        "sat_usuario": request.sat_usuario,
        "sat_password_encrypted": None
        if request.sat_password is None
        else _seal(cipher, connection_id, request.sat_password.get_secret_value(), "sat_password"),
        "estacion_trabajo": request.estacion_trabajo,
        "created_by": change.actor.user_id,
    }
    try:
        statement = _SQL.insert_connection if existing is None else _SQL.revive_connection
        change.connection.execute(statement.sql, parameters)
    except pg_errors.UniqueViolation as exc:  # created meanwhile by a concurrent request
        if exc.diag.constraint_name != SUBDOMAIN_KEY:
            raise
        raise _subdomain_taken(request.subdomain) from None
    created = get_connection(change.connection, connection_id)
    change.audit(
        "rpapos_connection.create",
        target_type="rpapos_connection",
        target_id=connection_id,
        before=before,
        after={**_audited(created), **({"revived": True} if existing is not None else {})},
    )
    return created


def _subdomain_taken(subdomain: str) -> RpaposConflict:
    return RpaposConflict(
        f"the tenant already has a connection to subdomain {subdomain}",
        [{"loc": "body.subdomain", "type": "already_connected", "msg": "already connected"}],
        code="subdomain_already_connected",
    )


def _locked(change: Change, connection_id: UUID) -> dict[str, Any]:
    row = change.connection.execute(_SQL.lock_connection.sql, {"connection_id": connection_id}).fetchone()
    if row is None:
        raise not_found("RPApos connection")
    if row["deleted_at"] is not None:
        raise RpaposConflict(
            "the connection is deleted: connect the subdomain again", code="connection_deleted"
        )
    return dict(row)


def update_connection(
    change: Change, connection_id: UUID, patch: RpaposConnectionPatch, cipher: CredentialCipher
) -> RpaposConnection:
    _locked(change, connection_id)
    before = get_connection(change.connection, connection_id)
    requested = {name: getattr(patch, name) for name in PATCHABLE if name in patch.model_fields_set}
    parameters: dict[str, Any] = {"connection_id": connection_id}
    for name in PATCHABLE:
        parameters[f"set_{name}"] = name in requested
        value = requested.get(name)
        if name in _SECRETS:
            parameters[SEALED_COLUMNS[name]] = (
                ("" if name == "api_key" else None)
                if value is None
                else _seal(cipher, connection_id, value.get_secret_value(), name)
            )
        elif name == "tipo_gestion_map":
            parameters[name] = None if value is None else Jsonb(value)
        else:
            parameters[name] = value
    parameters["credentials_changed"] = bool(_CREDENTIALS & requested.keys())
    change.connection.execute(_SQL.update_connection.sql, parameters)
    after = get_connection(change.connection, connection_id)
    old, new = changed_fields(_audited(before), _audited(after))
    change.audit(
        "rpapos_connection.update",
        target_type="rpapos_connection",
        target_id=connection_id,
        before=old,
        # Secrets given again are replaced even when the same ones were held: said by name.
        after={**new, "resealed": [s for s in _SECRETS if requested.get(s)]},
    )
    return after


def delete_connection(change: Change, connection_id: UUID) -> RpaposConnection:
    _locked(change, connection_id)
    active = change.connection.execute(_SQL.active_run.sql, {"connection_id": connection_id}).fetchone()
    if active is not None:
        raise RpaposConflict(
            f"sync run {active['id']} is {active['status']}: cancel it before deleting the connection",
            code="sync_run_active",
        )
    before = get_connection(change.connection, connection_id)
    change.connection.execute(_SQL.delete_connection.sql, {"connection_id": connection_id})
    after = get_connection(change.connection, connection_id)
    change.audit(
        "rpapos_connection.delete",
        target_type="rpapos_connection",
        target_id=connection_id,
        before=_audited(before),
        after=_audited(after),
    )
    return after


# ---------------------------------------------------------------- the SOAP service


SoapClientFactory = Callable[[], "RpaposSoapClient"]


def _soap_failure(error: RpaposError) -> ApiError:
    """What an RPApos failure answers. Messages are this API's own words: a fault's text stays in
    the log of the SOAP client, never in an answer."""
    if isinstance(error, SoapBadCredentials):
        return RpaposConflict(
            "RPApos refused the connection's SAT user and password: correct them (PATCH) and retry",
            code="sat_credentials_rejected",
        )
    if isinstance(error, RpaposUnavailable):
        return RpaposDown("the RPApos SOAP service did not answer; nothing was written, try again later")
    if isinstance(error, RpaposSoapError) and "server" not in (error.fault_code or "").lower():
        return RpaposConflict(
            "RPApos refused the request for this connection (unknown subdomain or account?)",
            code="rpapos_refused",
        )
    return RpaposRefused("RPApos answered with an error or an unreadable answer; nothing was written")


def register_device(
    change: Change, connection_id: UUID, cipher: CredentialCipher, soap_client: SoapClientFactory
) -> RpaposConnection:
    """Dispositivo_Registra_2 with the SAT credentials; the token is sealed, the SAT metadata kept.

    The row stays locked during the call (bounded by the SOAP client's operation timeout), so two
    registrations of one connection never race."""
    row = _locked(change, connection_id)
    password, sat_password = _open(cipher, row, "password"), _open(cipher, row, "sat_password")
    try:
        registration = soap_client().register_device(
            row["usuario"],
            password or "",
            row["subdomain"],
            DEVICE_NAME,
            sat_usuario=row["sat_usuario"],
            sat_password=sat_password,
        )
    except RpaposError as exc:
        raise _soap_failure(exc) from None
    metadata = (registration.localizacion_id, registration.conexion_db, registration.conexion_mainframe)
    limits = (SMALLINT_MAX, INTEGER_MAX, INTEGER_MAX)
    if any(not 0 <= value <= limit for value, limit in zip(metadata, limits, strict=True)):
        raise RpaposRefused("RPApos answered the device registration with numbers out of range")
    before = _sealed_names(row)
    change.connection.execute(
        _SQL.store_device.sql,
        {
            "connection_id": connection_id,
            "soap_token_encrypted": _seal(cipher, connection_id, registration.token, "soap_token"),
            "localizacion_id": registration.localizacion_id,
            "conexion_db": registration.conexion_db,
            "conexion_mainframe": registration.conexion_mainframe,
        },
    )
    after = get_connection(change.connection, connection_id)
    change.audit(
        "rpapos_connection.register_device",
        target_type="rpapos_connection",
        target_id=connection_id,
        before={
            "sealed": before,
            "localizacion_id": row["localizacion_id"],
            "conexion_db": row["conexion_db"],
            "conexion_mainframe": row["conexion_mainframe"],
        },
        after={
            "sealed": _audited(after)["sealed"],
            "localizacion_id": after.localizacion_id,
            "conexion_db": after.conexion_db,
            "conexion_mainframe": after.conexion_mainframe,
        },
    )
    return after


@dataclass(frozen=True, slots=True)
class AccountLogin:
    """What Cuenta_Validar_1 needs of a connection, opened (never logged: no secret in a repr)."""

    subdomain: str
    usuario: str
    password: str = field(repr=False)
    sat_usuario: str | None
    sat_password: str | None = field(repr=False)


def account_login(connection: Connection, connection_id: UUID, cipher: CredentialCipher) -> AccountLogin:
    found = connection.execute(_SQL.connection_credentials.sql, {"connection_id": connection_id}).fetchone()
    if found is None:
        raise not_found("RPApos connection")
    if found["deleted_at"] is not None:
        raise RpaposConflict(
            "the connection is deleted: connect the subdomain again", code="connection_deleted"
        )
    return AccountLogin(
        subdomain=found["subdomain"],
        usuario=found["usuario"],
        password=_open(cipher, found, "password") or "",
        sat_usuario=found["sat_usuario"],
        sat_password=_open(cipher, found, "sat_password"),
    )


def validate_account(login: AccountLogin, soap_client: SoapClientFactory) -> AccountValidation:
    """Cuenta_Validar_1 with the SAT credentials (no transaction is held during the call)."""
    try:
        result = soap_client().validate_account(
            login.usuario,
            login.password,
            login.subdomain,
            sat_usuario=login.sat_usuario,
            sat_password=login.sat_password,
        )
    except RpaposError as exc:
        raise _soap_failure(exc) from None
    return AccountValidation(valid=result.valid, message=result.message)
