"""Data layer: connections fitted to Lambda, named SQL, and database errors translated once."""

from pos_gateway.db.connection import ConnectionFactory, DatabaseCredentials, tenant_transaction
from pos_gateway.db.errors import Conflict, DatabaseError, DatabaseUnavailable, IntegrityViolation, NotFound
from pos_gateway.db.queries import Queries

__all__ = [
    "Conflict",
    "ConnectionFactory",
    "DatabaseCredentials",
    "DatabaseError",
    "DatabaseUnavailable",
    "IntegrityViolation",
    "NotFound",
    "Queries",
    "tenant_transaction",
]
