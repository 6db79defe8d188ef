"""DATABASE_READ_URL: the admin API's reads go to the replica, its writes and the caller's
standing to the primary."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local.database import Cluster, Database, create_database, drop_database
from tests.admin_support import make_cast, open_admin_api
from tests.conftest import TEMPLATE_DB


@pytest.fixture
def replica(cluster: Cluster) -> Iterator[str]:
    """A second database standing in for a replica: same schema, none of the primary's rows."""
    name = "t_admin_replica"
    create_database(cluster, name, template=TEMPLATE_DB, recreate=True)
    yield name
    drop_database(cluster, name)


def test_reads_go_to_the_replica_and_writes_to_the_primary(
    database: Database, owner: psycopg.Connection[Any], replica: str
) -> None:
    cast = make_cast(owner)
    with open_admin_api(database, read_url=f"dbname={replica}") as api:
        wallet = f"/admin/tenants/{cast.tenant_a}/wallets/{cast.wallet_a}"
        # The caller's standing is read on the primary (it passes); the wallet on the replica,
        # which has not got it.
        assert api.call("GET", wallet, cast.claims("client_a")).status == 404
        body = {"direction": "credit", "points": 5, "reason": "goodwill", "expected_version": 2}
        assert api.call("POST", wallet + "/adjustments", cast.claims("client_a"), body=body).status == 201
    assert owner.execute(
        "SELECT points_balance FROM loyalty.wallets WHERE id = %s", (cast.wallet_a,)
    ).fetchone() == {"points_balance": 1005}
