"""Connections fitted to Lambda: one per warm container, reopened after a failure.

``prepare_threshold=None`` and transaction-local settings keep RDS Proxy from pinning the
connection; the tenant context lives in ``set_config('app.tenant_id', ..., true)``.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
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
        if connection is None or connection.closed or connection.broken:
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


_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


@contextmanager
def tenant_transaction(
    connection: Connection, tenant_id: UUID | None, *, pipeline: bool = False
) -> Iterator[Connection]:
    """One database transaction, scoped to a tenant by row-level security when one is given.

    With ``pipeline``, statements whose results are not read yet (BEGIN, the tenant context,
    trailing writes, COMMIT) travel in the round trip of the next statement that is read.
    """
    batching = connection.pipeline() if pipeline else nullcontext()
    with translated_errors(), batching, connection.transaction():
        if tenant_id is not None:
            connection.execute(_SET_TENANT, (str(tenant_id),))
        yield connection
