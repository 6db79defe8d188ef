"""Embedded PostgreSQL (pgserver) or DATABASE_URL, bootstrapped and migrated with yoyo."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import RowFactory, dict_row
from yoyo import get_backend, read_migrations

from pos_gateway.db import ConnectionFactory, DatabaseCredentials

MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "migrations"
MIGRATOR_ROLE = "pos_gateway_migrator"
# Every function's role: created by the migrations, named pos_gateway_* (the migrator aside).
_APP_ROLES_QUERY = (
    "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pos\\_gateway\\_%%' AND rolname <> %s ORDER BY rolname"
)
# Development-only password, so the stack also works against a DATABASE_URL that is not trust-auth;
# unlike any name, so the suite's log scan can tell a leak from a stack or function name.
LOCAL_ROLE_PASSWORD = "pg-local-only-secret"


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL server reachable with a superuser-capable connection string."""

    admin_url: str
    host: str
    port: int
    data_dir: Path | None = None  # an embedded cluster's: the one this process can restart

    def url(self, dbname: str, user: str) -> str:
        return psycopg.conninfo.make_conninfo(
            self.admin_url, dbname=dbname, user=user, password=LOCAL_ROLE_PASSWORD
        )


@dataclass(frozen=True)
class Database:
    """One database of a cluster, reachable as its owner or as any app role."""

    cluster: Cluster
    name: str

    def owner(self, row_factory: RowFactory[Any] = dict_row) -> psycopg.Connection[Any]:
        """A superuser connection: bypasses row-level security, for arranging and checking."""
        return psycopg.connect(
            self.cluster.admin_url, dbname=self.name, autocommit=True, row_factory=row_factory
        )

    def connect_as(self, role: str, row_factory: RowFactory[Any] = dict_row) -> psycopg.Connection[Any]:
        # prepare_threshold=None as in pos_gateway.db (RDS Proxy).
        return psycopg.connect(
            self.cluster.url(self.name, role),
            autocommit=True,
            prepare_threshold=None,
            row_factory=row_factory,
        )

    def secret(self, role: str) -> dict[str, Any]:
        """The role's login as an RDS-style Secrets Manager secret holds it."""
        params = psycopg.conninfo.conninfo_to_dict(self.cluster.url(self.name, role))
        return {
            "host": params.get("host", ""),
            "port": int(params.get("port") or 5432),
            "dbname": self.name,
            "username": role,
            "password": params.get("password"),
        }

    def credentials(self, role: str) -> DatabaseCredentials:
        return DatabaseCredentials.model_validate(self.secret(role))

    def connections(self, role: str) -> ConnectionFactory:
        credentials = self.credentials(role)
        return ConnectionFactory(lambda: credentials)


def embedded_cluster(data_dir: Path) -> Cluster:
    """Start (or reuse) a pgserver cluster in data_dir; it stops when this process exits."""
    from pgserver import postgres_server  # imported lazily: only local runs need it

    server = postgres_server.get_server(data_dir, cleanup_mode="stop")
    url = server.get_uri()
    params = psycopg.conninfo.conninfo_to_dict(url)
    return Cluster(
        admin_url=url,
        host=str(params.get("host", "")),
        port=int(params.get("port") or 5432),
        data_dir=server.pgdata,
    )


def restart_embedded(cluster: Cluster) -> None:
    """Restart an embedded cluster as an operator would (fast shutdown: every session is ended,
    open transactions roll back); returns once it accepts connections again."""
    if cluster.data_dir is None:
        raise ValueError("only an embedded cluster can be restarted from here")
    from pgserver import _commands, postgres_server

    pg_ctl: Callable[..., str] = getattr(_commands, "pg_ctl")  # noqa: B009 - generated at import
    server = postgres_server.get_server(cluster.data_dir, cleanup_mode="stop")
    pg_ctl(
        ["-w", "-m", "fast", "-l", str(server.log), "restart"],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=60,
    )
    # The server's handle follows the new postmaster, so it still stops it when this process exits.
    server.ensure_postgres_running()


def external_cluster(database_url: str) -> Cluster:
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    return Cluster(
        admin_url=database_url,
        host=str(params.get("host", "localhost")),
        port=int(params.get("port") or 5432),
    )


def create_database(
    cluster: Cluster, dbname: str, template: str | None = None, recreate: bool = False
) -> None:
    """Create the migrator role (once per cluster) and a database it owns."""
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MIGRATOR_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(MIGRATOR_ROLE)))
            _set_password(conn, MIGRATOR_ROLE)
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists and recreate:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
            exists = None
        if not exists:
            statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(dbname), sql.Identifier(MIGRATOR_ROLE)
            )
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(statement)


def drop_database(cluster: Cluster, dbname: str) -> None:
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def migrate(cluster: Cluster, dbname: str) -> int:
    """Apply pending migrations as the migrator role; returns how many were applied."""
    params = psycopg.conninfo.conninfo_to_dict(cluster.url(dbname, MIGRATOR_ROLE))
    host = params.get("host", "")
    port = params.get("port") or 5432
    yoyo_url = f"postgresql+psycopg://{MIGRATOR_ROLE}:{LOCAL_ROLE_PASSWORD}@/{dbname}?host={host}&port={port}"
    backend = get_backend(yoyo_url)
    try:
        with backend.lock():
            pending = backend.to_apply(read_migrations(str(MIGRATIONS)))
            backend.apply_migrations(pending)
    finally:
        # yoyo keeps its connection open; a template database must have no sessions left.
        backend.connection.close()
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        for role in app_roles(conn):
            _set_password(conn, role)
    return len(pending)


def app_roles(conn: psycopg.Connection[Any]) -> list[str]:
    """The roles the functions connect as (every pos_gateway_* role but the migrator)."""
    return [str(row[0]) for row in conn.execute(_APP_ROLES_QUERY, (MIGRATOR_ROLE,)).fetchall()]


def _set_password(conn: psycopg.Connection[tuple[object, ...]], role: str) -> None:
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(LOCAL_ROLE_PASSWORD))
    )
