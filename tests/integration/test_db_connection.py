"""A warm function's connection after the server ended its session (a restart, a failover, a
terminated backend): the next invocation gets a fresh connection instead of a failed statement."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local.database import Database
from pos_gateway.db import ConnectionFactory, tenant_transaction

ROLE = "pos_gateway_ingest"


@pytest.fixture
def connections(database: Database) -> Iterator[ConnectionFactory]:
    factory = database.connections(ROLE)
    yield factory
    factory.close()


def _backend_pid(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    return int(row["pid"])


def _wait_until_gone(owner: psycopg.Connection[Any], pid: int) -> None:
    # pg_terminate_backend only signals; the backend has closed the socket once it has left.
    for _ in range(500):
        if not owner.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            return
        owner.execute("SELECT pg_sleep(0.01)")
    raise AssertionError(f"backend {pid} did not end")


def test_an_idle_healthy_connection_is_reused(connections: ConnectionFactory) -> None:
    first = connections.get()
    pid = _backend_pid(first)
    again = connections.get()
    assert again is first
    assert _backend_pid(again) == pid


def test_a_connection_the_server_ended_is_replaced_before_use(
    connections: ConnectionFactory, owner: psycopg.Connection[Any]
) -> None:
    first = connections.get()
    pid = _backend_pid(first)
    owner.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _wait_until_gone(owner, pid)

    fresh = connections.get()

    assert fresh is not first
    assert first.closed
    with tenant_transaction(fresh, None) as conn:
        assert _backend_pid(conn) != pid


def test_without_the_check_the_ended_connection_fails_its_first_statement(
    database: Database, owner: psycopg.Connection[Any]
) -> None:
    """What the check spares an invocation (so the test above cannot pass by accident)."""
    connection = database.connect_as(ROLE)
    pid = _backend_pid(connection)
    owner.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _wait_until_gone(owner, pid)
    with pytest.raises(psycopg.OperationalError):
        connection.execute("SELECT 1")
    connection.close()
