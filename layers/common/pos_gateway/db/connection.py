"""Connections fitted to Lambda: one per warm container, reopened after a failure, or when the
server has closed it since its last use (a database restart or failover).

``prepare_threshold=None`` and transaction-local settings keep RDS Proxy from pinning the
connection; the tenant context lives in ``set_config('app.tenant_id', ..., true)``.
"""

import json
import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from psycopg import pq
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_loads
from pydantic import BaseModel, Field, SecretStr

from pos_gateway.db.errors import translated_errors

Connection = psycopg.Connection[DictRow]

# JSON numbers with a fraction load as Decimal: rule configs carry rates that must stay exact.
_json_loads = partial(json.loads, parse_float=Decimal)


class DatabaseCredentials(BaseModel):
    """The shape of an RDS-style Secrets Manager secret (one per database role)."""

    host: str
    port: int = 5432
    dbname: str
    username: str
    password: SecretStr | None = None
    connect_timeout: int = Field(default=5, ge=1)

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.username,
            "connect_timeout": self.connect_timeout,
            "application_name": "pos_gateway",
        }
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        return kwargs


class ConnectionFactory:
    """Lazily opens one connection and hands it out until it breaks."""

    def __init__(self, credentials: Callable[[], DatabaseCredentials]) -> None:
        self._credentials = credentials
        self._connection: Connection | None = None

    def get(self) -> Connection:
        connection = self._connection
        if connection is None or connection.closed or connection.broken or _closed_by_server(connection):
            if connection is not None:
                connection.close()
            connection = self._connection = self._open()
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> Connection:
        with translated_errors():
            connection = psycopg.connect(
                **self._credentials().connect_kwargs(),
                autocommit=True,
                prepare_threshold=None,
                row_factory=dict_row,
            )
        set_json_loads(_json_loads, connection)
        return connection


def _closed_by_server(connection: Connection) -> bool:
    """Whether the server spoke to an idle connection: between invocations nothing is expected, so
    something to read is the message of a server ending the session (shutdown, restart, a
    terminated backend) or its end of file. One non-blocking poll; the first statement would
    otherwise fail and cost the invocation."""
    if connection.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_BEGIN: LiteralString = "BEGIN"
_COMMIT: LiteralString = "COMMIT"
_ROLLBACK: LiteralString = "ROLLBACK"
_SET_TENANT: LiteralString = "SELECT set_config('app.tenant_id', %(tenant_id)s, true)"
_SET_TENANT_AND_LOCK_TIMEOUT: LiteralString = (
    "SELECT set_config('app.tenant_id', %(tenant_id)s, true),"
    " set_config('lock_timeout', %(lock_timeout)s, true)"
)


@contextmanager
def tenant_transaction(
    connection: Connection, tenant_id: UUID | None, *, pipeline: bool = False, lock_timeout: str | None = None
) -> Iterator[Connection]:
    """One database transaction, scoped to a tenant by row-level security when one is given.

    ``lock_timeout`` bounds every lock wait of the transaction (then it fails, nothing written).
    With ``pipeline``, BEGIN, the tenant context and statements whose results are not read yet
    travel in the round trip of the next statement that is read, and COMMIT with the final Sync.
    (psycopg's ``transaction()`` inside a pipeline would sync on entry and twice on exit, so the
    pipelined form issues BEGIN / COMMIT itself on the autocommit connection.)
    """
    if not pipeline:
        with translated_errors(), connection.transaction():
            _set_context(connection, tenant_id, lock_timeout)
            yield connection
        return
    with translated_errors():
        try:
            with connection.pipeline():
                connection.execute(_BEGIN)
                _set_context(connection, tenant_id, lock_timeout)
                try:
                    yield connection
                except BaseException:
                    if connection.pgconn.pipeline_status != pq.PipelineStatus.ABORTED:
                        connection.execute(_ROLLBACK)  # an aborted pipeline skips it; see finally
                    raise
                connection.execute(_COMMIT)
        finally:
            if connection.info.transaction_status != pq.TransactionStatus.IDLE:
                _roll_back_or_close(connection)


def _set_context(connection: Connection, tenant_id: UUID | None, lock_timeout: str | None) -> None:
    tenant = "" if tenant_id is None else str(tenant_id)
    if lock_timeout is not None:
        connection.execute(_SET_TENANT_AND_LOCK_TIMEOUT, {"tenant_id": tenant, "lock_timeout": lock_timeout})
    elif tenant_id is not None:
        connection.execute(_SET_TENANT, {"tenant_id": tenant})


def _roll_back_or_close(connection: Connection) -> None:
    """End a transaction a failure left open; a connection that cannot is closed (then reopened)."""
    try:
        connection.execute(_ROLLBACK)
    except psycopg.Error:
        connection.close()
