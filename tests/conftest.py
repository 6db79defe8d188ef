"""Shared fixtures: one embedded PostgreSQL per session, a fresh database per test module.

Each module's database is cloned from a template database that has every migration applied
(CREATE DATABASE ... TEMPLATE), which is much faster than migrating per module.
"""

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local.database import (
    LOCAL_ROLE_PASSWORD,
    Cluster,
    Database,
    create_database,
    drop_database,
    embedded_cluster,
    external_cluster,
    migrate,
)
from pos_gateway.ingest.repository import RawEventStore
from pos_gateway.loyalty.crediting import CreditingService
from tests.admin_support import CIPHER
from tests.helpers import SIGNATURE_KEY
from tests.log_scan import leaks, remember_secret

TEMPLATE_DB = "pos_gateway_test_template"

# Handlers read these at import; tests never talk to real AWS.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PosGatewayTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tests")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    found = external_cluster(url) if url else embedded_cluster(_short_dir(tmp_path_factory) / "pg")
    create_database(found, TEMPLATE_DB, recreate=True)
    migrate(found, TEMPLATE_DB)
    return found


def _short_dir(factory: pytest.TempPathFactory) -> Path:
    # Unix socket paths are limited to ~107 bytes; the socket lives in the data directory.
    return factory.mktemp("db", numbered=True)


@pytest.fixture(scope="module")
def database(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Database]:
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.module.__name__.lower())[-50:]
    create_database(cluster, name, template=TEMPLATE_DB, recreate=True)
    yield Database(cluster, name)
    drop_database(cluster, name)


@pytest.fixture(scope="module")
def owner(database: Database) -> Iterator[psycopg.Connection[Any]]:
    """The module database as its superuser (row-level security does not apply)."""
    with database.owner() as conn:
        yield conn


@pytest.fixture(scope="module")
def store(database: Database) -> Iterator[RawEventStore]:
    """The raw event store as webhook ingest uses it (role pos_gateway_ingest)."""
    connections = database.connections("pos_gateway_ingest")
    yield RawEventStore(connections)
    connections.close()


@pytest.fixture(scope="module")
def crediting(database: Database) -> Iterator[CreditingService]:
    """The crediting service as the SQS handler uses it (role pos_gateway_crediting)."""
    connections = database.connections("pos_gateway_crediting")
    yield CreditingService(connections)
    connections.close()


@pytest.fixture(autouse=True)
def _ledger_matches_balances(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used a database: each wallet's balance equals its ledger sum."""
    yield
    if "database" not in request.fixturenames:
        return
    db: Database = request.getfixturevalue("database")
    with db.owner() as conn:
        mismatches = conn.execute(
            """
            SELECT w.id, w.points_balance, coalesce(sum(CASE l.entry_type WHEN 'credit' THEN l.points
                                                              ELSE -l.points END), 0) AS ledger_sum
              FROM loyalty.wallets w LEFT JOIN loyalty.wallet_ledger l ON l.wallet_id = w.id
             GROUP BY w.id HAVING w.points_balance <> coalesce(sum(CASE l.entry_type WHEN 'credit'
                                                  THEN l.points ELSE -l.points END), 0)
            """
        ).fetchall()
    assert mismatches == [], f"wallet balances differ from their ledgers: {mismatches}"


# ---------------------------------------------------------------- no secret in any log line

_LEAKS: list[str] = []
remember_secret(
    LOCAL_ROLE_PASSWORD, SIGNATURE_KEY, *(base64.b64encode(key).decode() for key in CIPHER.keys.values())
)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for section, text in report.sections:
        for leak in leaks(text):
            _LEAKS.append(f"{report.nodeid} [{section}]: {leak}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LEAKS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("secrets in log output", sep="=", red=True)
            for leak in sorted(set(_LEAKS)):
                reporter.line(leak, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
