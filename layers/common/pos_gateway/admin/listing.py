"""Lists: keyset pagination with opaque cursors, and search terms that are only ever text."""

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 512

# (sort timestamp, id): every list is ordered by a timestamp then the row id, newest first.
Position = tuple[datetime, UUID]
_POSITION: TypeAdapter[Position] = TypeAdapter(Position)


class InvalidCursor(ApiError):
    status_code = 400
    code = "invalid_cursor"


def encode_cursor(position: Position) -> str:
    document = json.dumps([position[0].isoformat(), str(position[1])], separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Position | None:
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor(
            "the cursor is too long", [{"loc": "cursor", "type": "too_long", "msg": "too long"}]
        )
    try:
        document: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = _POSITION.validate_python(document)
    except (binascii.Error, ValueError, ValidationError, TypeError) as exc:
        raise InvalidCursor(
            "the cursor is not one this API issued",
            [{"loc": "cursor", "type": "invalid_cursor", "msg": "not a cursor from a previous page"}],
        ) from exc
    if position[0].tzinfo is None:
        raise InvalidCursor("the cursor is not one this API issued")
    return position


def next_cursor(rows: list[dict[str, Any]], limit: int, *, at: str = "created_at") -> str | None:
    """The cursor after the last row when the page is full (queries fetch ``limit + 1``)."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor((last[at], last["id"]))


def cursor_parameters(cursor: str | None) -> dict[str, Any]:
    """``after_at`` / ``after_id`` for ``(at, id) < (after_at, after_id)``; both NULL on page one."""
    position = decode_cursor(cursor)
    return {
        "after_at": None if position is None else position[0],
        "after_id": None if position is None else position[1],
    }


def fetch_page(
    connection: Connection,
    sql: str,
    parameters: Mapping[str, Any],
    *,
    limit: int,
    cursor: str | None,
    at: str = "created_at",
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a keyset list: at most ``limit`` rows after ``cursor``, and the next page's cursor.

    ``sql`` reads ``%(limit)s`` (given ``limit + 1``: the extra row says whether a next page
    exists) and ``%(after_at)s`` / ``%(after_id)s`` (see ``cursor_parameters``) besides
    ``parameters``; ``at`` names the rows' sort timestamp (see ``next_cursor``).
    """
    rows = connection.execute(sql, {**parameters, "limit": limit + 1, **cursor_parameters(cursor)}).fetchall()
    return rows[:limit], next_cursor(rows, limit, at=at)


def contains_pattern(term: str) -> str:
    """An ILIKE pattern matching ``term`` literally anywhere (used with ``ESCAPE '\\'``)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
