"""The caller's standing, read inside the request's tenant transaction."""

from collections.abc import Callable

from pos_gateway.auth.claims import Principal
from pos_gateway.auth.policy import CallerStanding
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection

_SQL = queries.load(__file__)


def send_caller_standing(connection: Connection, principal: Principal) -> Callable[[], CallerStanding]:
    """Send the query now, read its answer when called: in a pipeline, statements sent in
    between travel in the same round trip."""
    cursor = connection.execute(
        _SQL.caller_standing.sql, {"user_id": principal.user_id, "tenant_id": principal.tenant_id}
    )

    def read() -> CallerStanding:
        row = cursor.fetchone()
        if row is None:
            raise LookupError("caller_standing returned no row")
        return CallerStanding(**row)

    return read


def caller_standing(connection: Connection, principal: Principal) -> CallerStanding:
    return send_caller_standing(connection, principal)()
