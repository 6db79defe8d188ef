"""A field seller's day through the local stack: offline work, a flaky network, sync, loyalty.

The simulated device (tests/field_device.py) queues operations while offline, then syncs over
HTTP through a network that refuses connections, loses responses of applied pushes and answers
5xx; it retries with exponential backoff and ends with every operation synced and the server's
records equal to its own.
"""

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from local.database import Cluster
from local.demo import FIELD_MEMBER_MOBILE
from local.stack import LocalStack
from tests.field_device import Fault, FlakyNetwork, SimulatedDevice
from tests.helpers import e2e_stack_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = e2e_stack_config(cluster, tmp_path_factory.mktemp("field_device"), "field_device")
    with LocalStack(config) as running:
        yield running


def _field(stack: LocalStack) -> Any:
    assert stack.demo is not None
    return stack.demo.field


def _scalar(stack: LocalStack, query: Any, *params: Any) -> Any:
    with stack.owner_connection() as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def test_an_offline_day_syncs_exactly_through_a_flaky_network(stack: LocalStack) -> None:
    field = _field(stack)
    plan = [
        Fault.REFUSE,
        Fault.LOSE_RESPONSE,  # the first batch lands; the device never hears
        Fault.UNAVAILABLE,
        None,
        Fault.BAD_GATEWAY_AFTER,  # the second batch lands; the device sees a 502
        None,
        Fault.LOSE_RESPONSE,  # a pull page is lost and asked again
    ]
    stock_before = Decimal(
        _scalar(
            stack, "SELECT quantity FROM field_sales.inventory WHERE product_id = %s", field.products["pollo"]
        )
    )
    with FlakyNetwork(stack.api_url, plan) as network:
        device = SimulatedDevice(network.base_url, field.seller_credential, field.products, batch_size=40)

        # Given a morning without signal: customers, cash and credit sales, payments, a rename
        customers = [device.add_customer(f"Cliente {n}", phone=f"9{n:08d}") for n in range(1, 9)]
        member = device.add_customer("María", phone="987 654 321")
        customers.append(member)
        for n in range(30):
            client = customers[n % len(customers)] if n % 3 else None
            device.sell(f"{1 + n % 4}.{n % 10}00", client_id=client)
        device.pay(customers[1], "5.00", "efectivo")
        device.pay(customers[2], "3.50", "plin")
        device.rename_customer(customers[0], "Cliente Uno")
        queued = len(device.queue)

        # When the signal comes back and it syncs through the flaky network
        device.sync(device.session())

    # Then every operation landed once and the device knows it
    assert device.queue == []
    assert {r.sync_status for r in device.records.values()} == {"synced"}
    assert network.injected == [f for f in plan if f is not None]
    assert (
        _scalar(
            stack, "SELECT count(*) FROM field_sales.sync_operations WHERE tenant_id = %s", field.tenant_id
        )
        == queued
    )

    # And the server's records equal the device's own
    sales = {k[1]: v for k, v in device.server.items() if k[0] == "sales"}
    mine = {str(i): r.data for i, r in device.records.items() if r.collection == "sales"}
    assert set(sales) == set(mine)
    for sale_id, data in mine.items():
        assert Decimal(sales[sale_id]["totalAmount"]) == Decimal(data["totalAmount"])
        assert sales[sale_id]["items"][0]["quantity"] == f"{Decimal(data['netWeight']):.3f}"
    for customer_id in customers:
        server = device.server[("customers", str(customer_id))]
        assert server["name"] == device.records[customer_id].data["name"]
        assert Decimal(server["debt"]) == device.expected_debt(customer_id)
        assert server["serverVersion"] == device.records[customer_id].server_version
    sold = sum(
        (Decimal(r.data["netWeight"]) for r in device.records.values() if r.collection == "sales"), Decimal(0)
    )
    stock = device.server[("inventory", str(field.products["pollo"]))]
    assert Decimal(stock["quantity"]) == stock_before - sold

    # And the member's credit sales earned points once each (1 point per sol, floor)
    assert stack.wait_until_drained(timeout=60)
    member_sales = [
        Decimal(r.data["totalAmount"])
        for r in device.records.values()
        if r.collection == "sales" and r.data.get("clientId") == str(member)
    ]
    expected_points = sum(int(total) for total in member_sales)
    assert expected_points > 0
    points = _scalar(
        stack,
        "SELECT w.points_balance FROM loyalty.wallets w JOIN identity.users u ON u.id = w.user_id"
        " WHERE w.tenant_id = %s AND u.mobile = %s",
        field.tenant_id,
        FIELD_MEMBER_MOBILE,
    )
    assert points == expected_points


def test_a_device_without_a_valid_credential_is_refused(stack: LocalStack) -> None:
    field = _field(stack)
    forged = field.seller_credential[:-4] + "AAAA"

    answers = [
        requests.post(f"{stack.api_url}/sync/push", json={"operations": []}, timeout=30),
        requests.get(f"{stack.api_url}/sync/pull", headers={"Authorization": f"Bearer {forged}"}, timeout=30),
        requests.get(
            f"{stack.api_url}/sync/customers/{uuid.uuid4()}/debt",
            headers={"Authorization": "Bearer nope"},
            timeout=30,
        ),
    ]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert {a.json()["error"]["code"] for a in answers} == {"device_unauthorized"}


def test_bad_bodies_are_refused_before_anything_is_written(stack: LocalStack) -> None:
    field = _field(stack)
    headers = {"Authorization": f"Bearer {field.seller_credential}"}
    before = _scalar(stack, "SELECT count(*) FROM field_sales.sync_operations")

    not_json = requests.post(
        f"{stack.api_url}/sync/push",
        data=b"{",
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    too_many = requests.post(
        f"{stack.api_url}/sync/push", json={"operations": [{}] * 501}, headers=headers, timeout=30
    )
    wrong_type = requests.post(
        f"{stack.api_url}/sync/push", data=b"x", headers={**headers, "Content-Type": "text/plain"}, timeout=30
    )

    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "malformed_json")
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (422, "validation_failed")
    assert wrong_type.status_code == 415
    assert _scalar(stack, "SELECT count(*) FROM field_sales.sync_operations") == before
