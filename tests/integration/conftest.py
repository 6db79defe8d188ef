"""Connections as the RPApos sync's two roles see the module database."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local.database import Database
from pos_gateway.db import ConnectionFactory


@pytest.fixture(scope="module")
def admin(database: Database) -> Iterator[psycopg.Connection[Any]]:
    """The admin API's role (starts, pauses, resumes and cancels runs)."""
    with database.connect_as("pos_gateway_admin") as conn:
        yield conn


@pytest.fixture(scope="module")
def engine_connections(database: Database) -> Iterator[ConnectionFactory]:
    """The sync tasks' role (pos_gateway_rpapos)."""
    factory = database.connections("pos_gateway_rpapos")
    yield factory
    factory.close()
