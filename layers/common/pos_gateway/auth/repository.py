"""The caller's standing, read inside the request's tenant transaction."""

from pos_gateway.auth.claims import Principal
from pos_gateway.auth.policy import CallerStanding
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection

_SQL = queries.load(__file__)


def caller_standing(connection: Connection, principal: Principal) -> CallerStanding:
    row = connection.execute(
        _SQL.caller_standing.sql, {"user_id": principal.user_id, "tenant_id": principal.tenant_id}
    ).fetchone()
    if row is None:
        raise LookupError("caller_standing returned no row")
    return CallerStanding(**row)
