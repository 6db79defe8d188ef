"""The bench's own database: fresh and migrated, dropped (or deleted with its server) afterwards."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.abc import Params

from bench.measure import BenchError
from local.database import (
    Cluster,
    Database,
    create_database,
    drop_database,
    embedded_cluster,
    external_cluster,
    migrate,
)

SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"

Conn = psycopg.Connection[Any]


@contextlib.contextmanager
def bench_database() -> Iterator[Database]:
    """A fresh, migrated database: in DATABASE_URL's server, else in an embedded one."""
    name = f"pos_gateway_bench_{os.getpid()}"
    url = os.environ.get("DATABASE_URL")
    with contextlib.ExitStack() as stack:
        cluster = external_cluster(url) if url else stack.enter_context(_embedded_server())
        create_database(cluster, name, recreate=True)
        if url:  # an embedded server is deleted whole
            stack.callback(drop_database, cluster, name)
        migrate(cluster, name)
        yield Database(cluster, name)


@contextlib.contextmanager
def _embedded_server() -> Iterator[Cluster]:
    from pgserver.postgres_server import get_server  # only the embedded path needs pgserver

    with tempfile.TemporaryDirectory(prefix="posbench-") as tmp:
        data_dir = Path(tmp) / "pg"
        # Registered first with cleanup "delete", so embedded_cluster reuses this handle.
        server = get_server(data_dir, cleanup_mode="delete")
        try:
            yield embedded_cluster(data_dir)
        finally:
            server.cleanup()


def scalar(conn: Conn, query: LiteralString, params: Params | None = None) -> Any:
    """The first column of the row ``query`` must return."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise BenchError("expected a row, got none")
    return row[0]
