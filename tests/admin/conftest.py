"""The admin API of the module's database, and a fresh cast of callers for each test."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local.database import Database
from tests.admin_support import AdminApi, Cast, make_cast, open_admin_api


@pytest.fixture(scope="module")
def api(database: Database) -> Iterator[AdminApi]:
    with open_admin_api(database) as opened:
        yield opened


@pytest.fixture
def cast(owner: psycopg.Connection[Any]) -> Cast:
    return make_cast(owner)
