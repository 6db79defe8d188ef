"""POS connections as operators see them: a status view, connect, rotate credentials, disconnect.

Tokens go one way: in through a request body (``SecretStr``, so they never show in a repr or a
log line), sealed at once with the credential cipher, bound to the row's table, column and id
(``pos.pos_connections.access_token_enc.<id>``, as crediting, the Square poller and the token
refresher open them). No answer carries a token in any form, not even sealed, and no audit row
is given one: the audited states name only the status, the expiry (``expires_at``) and whether a
refresh token is held (``has_refresh``), keys that the audit redaction leaves readable.

- Connecting a merchant account that is connected already (to this tenant or another one)
  answers 409 ``merchant_already_connected``: an account belongs to one tenant, webhooks are
  routed by it.
- Rotating replaces the credentials as a set (PUT): a refresh token or expiry left out is
  cleared. The connection goes back to ``active`` with its last error cleared. A disconnected
  connection answers 409 ``connection_disconnected``: connect the merchant again instead.
- Disconnecting sets ``disconnected`` and ``deleted_at`` (the merchant may then be connected
  again, as a new connection) and wipes the sealed tokens, which nothing may use any more.
  Disconnecting again answers 409 ``connection_already_disconnected``: the connection still
  shows, with its ``disconnected_at``.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from psycopg import errors as pg_errors
from pydantic import AwareDatetime, BaseModel, Field, SecretStr, StringConstraints

from pos_gateway.admin.access import not_found
from pos_gateway.admin.inputs import RequestBody
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.crypto import CredentialCipher
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "connections.sql")

TABLE = "pos.pos_connections"
ACCESS_TOKEN_COLUMN = "access_token_enc"  # noqa: S105 - a column name
REFRESH_TOKEN_COLUMN = "refresh_token_enc"  # noqa: S105 - a column name
MERCHANT_KEY = "pos_connections_merchant_key"
MAX_TOKEN_LENGTH = 4096

PosType = Literal["square", "clover"]
Status = Literal["active", "disconnected", "token_expired", "error"]
Token = Annotated[SecretStr, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
MerchantAccountId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
]


class PosConnection(BaseModel):
    id: UUID
    pos_type: PosType
    merchant_account_id: str
    status: Status
    token_expired: bool = Field(description="status token_expired, or token_expires_at has passed")
    token_expires_at: datetime | None
    last_synced_at: datetime | None = Field(description="The latest webhook sync or Square poll")
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    disconnected_at: datetime | None


class ConnectionPage(BaseModel):
    items: list[PosConnection]
    next_cursor: str | None


class Credentials(RequestBody):
    access_token: Token
    refresh_token: Token | None = None
    token_expires_at: AwareDatetime | None = Field(default=None, description="When the access token expires")


class NewConnection(Credentials):
    pos_type: PosType
    merchant_account_id: MerchantAccountId


class ConnectionConflict(ApiError):
    status_code = 409


def get_connection(connection: Connection, connection_id: UUID) -> PosConnection:
    row = connection.execute(_SQL.get_connection.sql, {"connection_id": connection_id}).fetchone()
    if row is None:
        raise not_found("POS connection")
    return PosConnection(**row)


def list_connections(connection: Connection, *, limit: int, cursor: str | None) -> ConnectionPage:
    rows, following = fetch_page(connection, _SQL.list_connections.sql, {}, limit=limit, cursor=cursor)
    return ConnectionPage(items=[PosConnection(**row) for row in rows], next_cursor=following)


def _sealed(cipher: CredentialCipher, connection_id: UUID, request: Credentials) -> dict[str, str]:
    """The envelopes of the row's columns; no refresh token is stored as '' (as the column's default)."""
    row_id = str(connection_id)
    refresh = request.refresh_token
    return {
        "access_token_enc": cipher.encrypt(
            request.access_token.get_secret_value(), table=TABLE, column=ACCESS_TOKEN_COLUMN, row_id=row_id
        ),
        "refresh_token_enc": ""
        if refresh is None
        else cipher.encrypt(
            refresh.get_secret_value(), table=TABLE, column=REFRESH_TOKEN_COLUMN, row_id=row_id
        ),
    }


def create_connection(change: Change, request: NewConnection, cipher: CredentialCipher) -> PosConnection:
    connection_id = uuid4()  # first: the envelopes are bound to it
    try:
        change.connection.execute(
            _SQL.insert_connection.sql,
            {
                "id": connection_id,
                "tenant_id": change.tenant,
                "pos_type": request.pos_type,
                "merchant_account_id": request.merchant_account_id,
                "token_expires_at": request.token_expires_at,
                **_sealed(cipher, connection_id, request),
            },
        )
    except pg_errors.UniqueViolation as exc:
        if exc.diag.constraint_name != MERCHANT_KEY:
            raise
        raise ConnectionConflict(
            f"{request.pos_type} merchant account {request.merchant_account_id} is already connected",
            [{"loc": "body.merchant_account_id", "type": "already_connected", "msg": "already connected"}],
            code="merchant_already_connected",
        ) from None
    created = get_connection(change.connection, connection_id)
    change.audit(
        "connection.create",
        target_type="pos_connection",
        target_id=connection_id,
        before=None,
        after={
            "pos_type": created.pos_type,
            "merchant_account_id": created.merchant_account_id,
            "status": created.status,
            "expires_at": created.token_expires_at,
            "has_refresh": request.refresh_token is not None,
        },
    )
    return created


def _locked(change: Change, connection_id: UUID) -> dict[str, Any]:
    row = change.connection.execute(_SQL.lock_connection.sql, {"connection_id": connection_id}).fetchone()
    if row is None:
        raise not_found("POS connection")
    return dict(row)


def _is_disconnected(row: dict[str, Any]) -> bool:
    return row["deleted_at"] is not None or row["status"] == "disconnected"


def rotate_credentials(
    change: Change, connection_id: UUID, request: Credentials, cipher: CredentialCipher
) -> PosConnection:
    before = _locked(change, connection_id)
    if _is_disconnected(before):
        raise ConnectionConflict(
            "the connection is disconnected: connect the merchant again instead",
            code="connection_disconnected",
        )
    change.connection.execute(
        _SQL.replace_credentials.sql,
        {
            "connection_id": connection_id,
            "token_expires_at": request.token_expires_at,
            **_sealed(cipher, connection_id, request),
        },
    )
    after = get_connection(change.connection, connection_id)
    change.audit(
        "connection.rotate_credentials",
        target_type="pos_connection",
        target_id=connection_id,
        before={"status": before["status"], "expires_at": before["token_expires_at"]},
        after={
            "status": after.status,
            "expires_at": after.token_expires_at,
            "has_refresh": request.refresh_token is not None,
            "rotated": True,
        },
    )
    return after


def disconnect(change: Change, connection_id: UUID) -> PosConnection:
    before = _locked(change, connection_id)
    if before["deleted_at"] is not None:
        raise ConnectionConflict(
            "the connection is already disconnected", code="connection_already_disconnected"
        )
    change.connection.execute(_SQL.disconnect.sql, {"connection_id": connection_id})
    after = get_connection(change.connection, connection_id)
    change.audit(
        "connection.disconnect",
        target_type="pos_connection",
        target_id=connection_id,
        before={
            "pos_type": before["pos_type"],
            "merchant_account_id": before["merchant_account_id"],
            "status": before["status"],
            "disconnected_at": None,
        },
        after={
            "pos_type": after.pos_type,
            "merchant_account_id": after.merchant_account_id,
            "status": after.status,
            "disconnected_at": after.disconnected_at,
        },
    )
    return after
