"""Clover connections: the sealed token crediting reads, and the mark of a refused token."""

from dataclasses import dataclass, field
from uuid import UUID

from pos_gateway.crypto import CredentialCipher
from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.db.connection import Connection

_SQL = queries.load(__file__)

CONNECTIONS_TABLE = "pos.pos_connections"
ACCESS_TOKEN_COLUMN = "access_token_enc"  # noqa: S105 - a column name
MAX_LAST_ERROR_LENGTH = 300


@dataclass(frozen=True, slots=True)
class CloverConnection:
    id: UUID
    status: str
    access_token_enc: str = field(repr=False)

    @property
    def usable(self) -> bool:
        return self.status in {"active", "error"}

    def access_token(self, cipher: CredentialCipher) -> str:
        """The plaintext token; it opens only for this row and column (AES-GCM associated data)."""
        return cipher.decrypt(
            self.access_token_enc, table=CONNECTIONS_TABLE, column=ACCESS_TOKEN_COLUMN, row_id=str(self.id)
        )


def find_connection(connection: Connection, merchant_account_id: str) -> CloverConnection | None:
    """Within the caller's tenant transaction (row-level security scopes it to the tenant)."""
    row = connection.execute(
        _SQL.clover_connection.sql, {"merchant_account_id": merchant_account_id}
    ).fetchone()
    return CloverConnection(**row) if row else None


class ConnectionStatus:
    """Writes about a connection that must outlive the crediting transaction (it rolls back)."""

    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections  # opened lazily, on the first refused token

    def mark_token_expired(self, tenant_id: UUID, connection_id: UUID, error: str) -> bool:
        connection = self._connections.get()
        with tenant_transaction(connection, tenant_id):
            row = connection.execute(
                _SQL.mark_token_expired.sql,
                {"connection_id": connection_id, "last_error": error[:MAX_LAST_ERROR_LENGTH]},
            ).fetchone()
        return row is not None
