"""The small error hierarchy the rest of the code sees instead of psycopg's."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors


class DatabaseError(Exception):
    """Base of every data-layer error."""


class NotFound(DatabaseError):
    """The row does not exist, or row-level security hides it from this tenant."""


class IntegrityViolation(DatabaseError):
    """A constraint or an integrity trigger refused the write."""

    def __init__(self, constraint: str | None, message: str) -> None:
        super().__init__(message)
        self.constraint = constraint


class Conflict(IntegrityViolation):
    """A unique constraint refused the write (the name says which)."""


class DatabaseUnavailable(DatabaseError):
    """The connection failed or dropped; the work may be retried."""


@contextmanager
def translated_errors() -> Iterator[None]:
    """Translate psycopg errors at the boundary, keeping the original as the cause."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        raise Conflict(exc.diag.constraint_name, str(exc)) from exc
    except psycopg.IntegrityError as exc:
        raise IntegrityViolation(exc.diag.constraint_name, str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(str(exc)) from exc
