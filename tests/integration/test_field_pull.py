"""Pull pages and the debt route against the real schema (role pos_gateway_field, tenant RLS).

Records are written with the owner connection in plain SQL, as the push would leave them.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from local.database import Database
from pos_gateway.db import ConnectionFactory
from pos_gateway.field.debt import customer_debt
from pos_gateway.field.devices import Device
from pos_gateway.field.pull import Change, PullPage, pull
from pos_gateway.http import ApiError
from tests.field_support import FieldBusiness, field_business
from tests.helpers import unique

SALE_DATE = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
Key = tuple[str, uuid.UUID]


@pytest.fixture(scope="module")
def connections(database: Database) -> Iterator[ConnectionFactory]:
    factory = database.connections("pos_gateway_field")
    yield factory
    factory.close()


def devices(connections: ConnectionFactory, business: FieldBusiness) -> tuple[Device, Device]:
    """The vendedor's device and the admin_negocio's device."""
    conn = connections.get()
    return business.seller.device(conn), business.owner.device(conn)


# ---------------------------------------------------------------- records, as the push writes them


def add_customer(owner: psycopg.Connection[Any], business: FieldBusiness, created_by: uuid.UUID) -> uuid.UUID:
    customer_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO field_sales.customers (id, tenant_id, name, phone, created_by)"
        " VALUES (%s, %s, %s, %s, %s)",
        (customer_id, business.tenant_id, unique("Cliente "), "987654321", created_by),
    )
    return customer_id


def add_distribucion(
    owner: psycopg.Connection[Any], business: FieldBusiness, vendedor_id: uuid.UUID
) -> uuid.UUID:
    distribucion_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO field_sales.distribuciones"
        " (id, tenant_id, vendedor_id, kilos_asignados, fecha, created_by)"
        " VALUES (%s, %s, %s, '120.500', %s, %s)",
        (distribucion_id, business.tenant_id, vendedor_id, date(2026, 11, 20), business.owner.seller_id),
    )
    return distribucion_id


def add_sale(
    owner: psycopg.Connection[Any],
    business: FieldBusiness,
    device: Device,
    total: str = "24.7500",
    *,
    client_id: uuid.UUID | None = None,
    paid: str | None = None,
) -> uuid.UUID:
    """A one-line sale: contado (paid in full) without ``paid``, credito with it."""
    sale_id = uuid.uuid4()
    sale_type = "contado" if paid is None else "credito"
    amount_paid = Decimal(total if paid is None else paid)
    with owner.transaction():
        owner.execute(
            "INSERT INTO field_sales.sales (id, tenant_id, client_id, seller_id, sale_type, total_amount,"
            " amount_paid, balance_due, net_weight, currency, sale_date, device_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '2.500', 'PEN', %s, %s)",
            (
                sale_id,
                business.tenant_id,
                client_id,
                device.seller_id,
                sale_type,
                Decimal(total),
                amount_paid,
                Decimal(total) - amount_paid,
                SALE_DATE,
                device.device_id,
            ),
        )
        owner.execute(
            "INSERT INTO field_sales.sale_items (tenant_id, sale_id, line_no, product_id, product_name,"
            " quantity, unit_price, subtotal) VALUES (%s, %s, 1, %s, 'Pollo entero', '1.000', %s, %s)",
            (business.tenant_id, sale_id, business.products["pollo"], Decimal(total), Decimal(total)),
        )
    return sale_id


def add_abono(
    owner: psycopg.Connection[Any], business: FieldBusiness, device: Device, client_id: uuid.UUID, amount: str
) -> uuid.UUID:
    abono_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO field_sales.abonos (id, tenant_id, client_id, seller_id, amount, payment_method,"
        " currency, paid_at, device_id) VALUES (%s, %s, %s, %s, %s, 'yape', 'PEN', %s, %s)",
        (
            abono_id,
            business.tenant_id,
            client_id,
            device.seller_id,
            Decimal(amount),
            SALE_DATE,
            device.device_id,
        ),
    )
    return abono_id


def add_void(
    owner: psycopg.Connection[Any],
    business: FieldBusiness,
    device: Device,
    *,
    sale_id: uuid.UUID | None = None,
    abono_id: uuid.UUID | None = None,
) -> uuid.UUID:
    void_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO field_sales.voids (id, tenant_id, sale_id, abono_id, reason, voided_by, device_id)"
        " VALUES (%s, %s, %s, %s, 'error de digitación', %s, %s)",
        (void_id, business.tenant_id, sale_id, abono_id, device.seller_id, device.device_id),
    )
    return void_id


# ---------------------------------------------------------------- pulling


def pull_all(
    connections: ConnectionFactory, device: Device, cursor: str | None = None, limit: int = 500
) -> tuple[list[Change], str, int]:
    """Every change after ``cursor``, page by page: the changes, the final cursor, the pages."""
    changes: list[Change] = []
    pages = 0
    while True:
        page = pull(connections, device, cursor, limit)
        pages += 1
        changes.extend(page.changes)
        cursor = page.next_cursor
        if not page.has_more:
            return changes, cursor, pages


def keys(changes: list[Change]) -> list[Key]:
    return [(change.collection.value, change.id) for change in changes]


def by_key(changes: list[Change]) -> dict[Key, Change]:
    return {(change.collection.value, change.id): change for change in changes}


def assert_caught_up(connections: ConnectionFactory, device: Device, cursor: str) -> None:
    page = pull(connections, device, cursor)
    assert page == PullPage(changes=[], next_cursor=cursor, has_more=False)


# ---------------------------------------------------------------- tests


def test_first_pull_returns_what_the_seller_may_see(owner, connections):
    business = field_business(owner)
    seller, admin = devices(connections, business)
    own_customer = add_customer(owner, business, seller.seller_id)
    admins_customer = add_customer(owner, business, admin.seller_id)
    own_distribucion = add_distribucion(owner, business, seller.seller_id)
    admins_distribucion = add_distribucion(owner, business, admin.seller_id)
    own_sale = add_sale(owner, business, seller, "30.0000", client_id=own_customer, paid="10.0000")
    own_voided_sale = add_sale(owner, business, seller)
    admins_sale = add_sale(owner, business, admin, client_id=admins_customer)
    own_abono = add_abono(owner, business, seller, own_customer, "5.0000")
    admins_abono = add_abono(owner, business, admin, admins_customer, "1.0000")
    # The admin voids the seller's sale: the seller's device must learn of it.
    void_of_own_sale = add_void(owner, business, admin, sale_id=own_voided_sale)
    void_of_admins_abono = add_void(owner, business, admin, abono_id=admins_abono)

    other = field_business(owner)
    other_seller, _ = devices(connections, other)
    other_customer = add_customer(owner, other, other_seller.seller_id)
    other_sale = add_sale(owner, other, other_seller, client_id=other_customer)

    shared: set[Key] = {
        *(("products", product) for product in business.products.values()),
        *(("inventory", product) for product in business.products.values()),
        ("customers", own_customer),
        ("customers", admins_customer),
    }
    seller_changes, seller_cursor, _ = pull_all(connections, seller)
    assert len(keys(seller_changes)) == len(set(keys(seller_changes)))
    assert set(keys(seller_changes)) == shared | {
        ("distribuciones", own_distribucion),
        ("sales", own_sale),
        ("sales", own_voided_sale),
        ("abonos", own_abono),
        ("voids", void_of_own_sale),
    }
    admin_changes, admin_cursor, _ = pull_all(connections, admin)
    assert set(keys(admin_changes)) == shared | {
        ("distribuciones", own_distribucion),
        ("distribuciones", admins_distribucion),
        ("sales", own_sale),
        ("sales", own_voided_sale),
        ("sales", admins_sale),
        ("abonos", own_abono),
        ("abonos", admins_abono),
        ("voids", void_of_own_sale),
        ("voids", void_of_admins_abono),
    }
    other_ids = {other_customer, other_sale, *other.products.values()}
    assert not other_ids & {change.id for change in seller_changes + admin_changes}

    changes = by_key(seller_changes)
    product = changes[("products", business.products["pollo"])]
    assert product.server_version == 1
    assert product.deleted is False
    assert product.data is not None
    assert (product.data["basePrice"], product.data["unit"], product.data["isActive"]) == (
        "9.9000",
        "kg",
        True,
    )
    stock = changes[("inventory", business.products["pollo"])]
    assert stock.server_version is None
    assert stock.data is not None
    assert stock.data["quantity"] == "100.000"
    sale = changes[("sales", own_sale)]
    assert sale.server_version == 1
    assert sale.data is not None
    assert (sale.data["saleType"], sale.data["balanceDue"], sale.data["clientId"]) == (
        "credito",
        "20.0000",
        str(own_customer),
    )
    assert sale.data["items"] == [
        {
            "lineNo": 1,
            "productId": str(business.products["pollo"]),
            "productName": "Pollo entero",
            "quantity": "1.000",
            "unitPrice": "30.0000",
            "subtotal": "30.0000",
        }
    ]
    assert changes[("sales", own_voided_sale)].data["items"][0]["subtotal"] == "24.7500"  # type: ignore[index]
    customer = changes[("customers", own_customer)]
    assert customer.server_version == 1
    assert customer.data is not None
    assert (customer.data["debt"], customer.data["createdBy"]) == ("0.0000", str(seller.seller_id))
    void = changes[("voids", void_of_own_sale)]
    assert (void.server_version, void.data) == (
        1,
        {
            "id": str(void_of_own_sale),
            "saleId": str(own_voided_sale),
            "abonoId": None,
            "reason": "error de digitación",
            "voidedBy": str(admin.seller_id),
            "createdAt": void.data["createdAt"] if void.data else None,
        },
    )
    assert changes[("distribuciones", own_distribucion)].data["kilosAsignados"] == "120.500"  # type: ignore[index]
    assert changes[("abonos", own_abono)].data["amount"] == "5.0000"  # type: ignore[index]
    # The wire form is camelCase.
    wire = PullPage(changes=seller_changes[:1], next_cursor=seller_cursor, has_more=False).model_dump(
        mode="json", by_alias=True
    )
    assert set(wire) == {"changes", "nextCursor", "hasMore"}
    assert set(wire["changes"][0]) == {"collection", "id", "deleted", "serverVersion", "data"}

    assert_caught_up(connections, seller, seller_cursor)
    assert_caught_up(connections, admin, admin_cursor)


def test_small_pages_visit_every_change_exactly_once(owner, connections):
    business = field_business(owner)
    seller, _ = devices(connections, business)
    customers = [add_customer(owner, business, seller.seller_id) for _ in range(5)]
    add_distribucion(owner, business, seller.seller_id)
    sales = [add_sale(owner, business, seller, client_id=customer, paid="0") for customer in customers[:3]]
    add_abono(owner, business, seller, customers[0], "2.0000")
    add_void(owner, business, seller, sale_id=sales[2])
    owner.execute(
        "UPDATE field_sales.inventory SET quantity = quantity - 1 WHERE tenant_id = %s", (business.tenant_id,)
    )

    everything, _, one_page = pull_all(connections, seller)
    assert one_page == 1
    assert len(everything) == 2 + 2 + 5 + 1 + 3 + 1 + 1
    for limit in (1, 2, 3):
        paged, cursor, pages = pull_all(connections, seller, limit=limit)
        assert keys(paged) == keys(everything)  # same order, each once
        assert paged == everything
        assert pages == -(-len(everything) // limit)  # the look-ahead row spares an empty last page
        assert_caught_up(connections, seller, cursor)


def test_a_change_after_the_cursor_reappears_once_at_its_latest_state(owner, connections):
    business = field_business(owner)
    seller, _ = devices(connections, business)
    customer = add_customer(owner, business, seller.seller_id)
    _, cursor, _ = pull_all(connections, seller)

    for name in ("Renamed once", "Renamed twice"):
        owner.execute(
            "UPDATE field_sales.customers SET name = %s, version = version + 1"
            " WHERE tenant_id = %s AND id = %s",
            (name, business.tenant_id, customer),
        )
    owner.execute(
        "UPDATE field_sales.inventory SET quantity = '97.500' WHERE tenant_id = %s AND product_id = %s",
        (business.tenant_id, business.products["huevo"]),
    )
    page = pull(connections, seller, cursor)
    assert keys(page.changes) == [("customers", customer), ("inventory", business.products["huevo"])]
    renamed, stock = page.changes
    assert renamed.server_version == 3
    assert renamed.data is not None
    assert renamed.data["name"] == "Renamed twice"
    assert stock.data is not None
    assert stock.data["quantity"] == "97.500"
    assert page.has_more is False
    assert_caught_up(connections, seller, page.next_cursor)


def test_deleted_customers_and_products_are_tombstones(owner, connections):
    business = field_business(owner)
    seller, _ = devices(connections, business)
    customer = add_customer(owner, business, seller.seller_id)
    _, cursor, _ = pull_all(connections, seller)

    owner.execute(
        "UPDATE field_sales.customers SET deleted_at = now(), version = version + 1"
        " WHERE tenant_id = %s AND id = %s",
        (business.tenant_id, customer),
    )
    owner.execute(
        "UPDATE field_sales.products SET deleted_at = now(), version = version + 1"
        " WHERE tenant_id = %s AND id = %s",
        (business.tenant_id, business.products["huevo"]),
    )
    page = pull(connections, seller, cursor)
    assert page.changes == [
        Change(collection="customers", id=customer, deleted=True, server_version=2, data=None),
        Change(
            collection="products", id=business.products["huevo"], deleted=True, server_version=2, data=None
        ),
    ]
    # A device pulling from scratch learns of the deletion too.
    first = by_key(pull_all(connections, seller)[0])
    assert first[("customers", customer)].deleted is True
    assert first[("products", business.products["huevo"])].data is None


def test_a_row_of_a_transaction_still_open_is_neither_served_nor_skipped(owner, database, connections):
    business = field_business(owner)
    seller, _ = devices(connections, business)
    _, cursor, _ = pull_all(connections, seller)

    with database.owner() as late:
        late.execute("BEGIN")
        try:
            slow = add_customer(late, business, seller.seller_id)
            # Committed while the first is still open: its position is after the open one's.
            quick = add_customer(owner, business, seller.seller_id)
            page = pull(connections, seller, cursor)
            assert page.changes == []
            assert page.next_cursor == cursor
            assert page.has_more is False
        finally:
            late.execute("COMMIT")

    page = pull(connections, seller, cursor)
    assert set(keys(page.changes)) == {("customers", slow), ("customers", quick)}
    assert keys(page.changes)[0] == ("customers", slow)  # the older transaction sorts first
    assert_caught_up(connections, seller, page.next_cursor)


def test_a_cursor_not_issued_to_the_seller_is_refused(owner, connections):
    business = field_business(owner)
    seller, admin = devices(connections, business)
    _, cursor, _ = pull_all(connections, seller)
    tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    for garbage in ("garbage", "not a cursor at all!", tampered, cursor + "x" * 80):
        with pytest.raises(ApiError) as refused:
            pull(connections, seller, garbage)
        assert (refused.value.status_code, refused.value.code) == (400, "invalid_cursor")
    # Another seller's position would skip this seller's records: refused as well.
    with pytest.raises(ApiError, match="cursor"):
        pull(connections, admin, cursor)


def test_a_seller_made_admin_starts_over_and_sees_the_whole_tenant(owner, connections):
    business = field_business(owner)
    seller, admin = devices(connections, business)
    admins_sale = add_sale(owner, business, admin)
    _, cursor, _ = pull_all(connections, seller)
    owner.execute(
        "UPDATE field_sales.business_users SET role = 'admin_negocio' WHERE tenant_id = %s AND id = %s",
        (business.tenant_id, seller.seller_id),
    )
    promoted = business.seller.device(connections.get())
    assert promoted.is_admin
    changes, _, _ = pull_all(connections, promoted, cursor)
    assert ("sales", admins_sale) in keys(changes)


def test_debt_is_the_sums_of_credit_sales_and_abonos_without_voids(owner, connections):
    business = field_business(owner)
    seller, admin = devices(connections, business)
    customer = add_customer(owner, business, seller.seller_id)
    add_sale(owner, business, seller, "24.7500", client_id=customer, paid="0")  # due 24.7500
    add_sale(owner, business, admin, "30.0000", client_id=customer, paid="10.0000")  # due 20.0000
    voided_sale = add_sale(owner, business, seller, "15.5000", client_id=customer, paid="0")
    add_void(owner, business, seller, sale_id=voided_sale)
    add_sale(owner, business, seller, "9.9000", client_id=customer)  # contado: nothing due
    add_abono(owner, business, seller, customer, "5.2500")
    add_abono(owner, business, admin, customer, "3.3333")
    voided_abono = add_abono(owner, business, seller, customer, "1.0000")
    add_void(owner, business, admin, abono_id=voided_abono)
    other_customer = add_customer(owner, business, seller.seller_id)
    add_sale(owner, business, seller, "99.0000", client_id=other_customer, paid="0")
    # What the push keeps on the customer, in the transactions of those records.
    owner.execute(
        "UPDATE field_sales.customers SET debt = '36.1667' WHERE tenant_id = %s AND id = %s",
        (business.tenant_id, customer),
    )

    debt = customer_debt(connections, seller, customer)
    assert debt.customer_id == customer
    assert debt.credit_sales == Decimal("44.7500")
    assert debt.abonos == Decimal("8.5833")
    assert str(debt.debt) == "36.1667"
    assert (debt.currency, debt.as_of.tzinfo is not None) == ("PEN", True)
    stored = owner.execute(
        "SELECT debt FROM field_sales.customers WHERE tenant_id = %s AND id = %s",
        (business.tenant_id, customer),
    ).fetchone()
    assert stored is not None
    assert stored["debt"] == debt.debt
    assert customer_debt(connections, admin, customer).debt == debt.debt
    pulled = by_key(pull_all(connections, seller)[0])[("customers", customer)]
    assert pulled.data is not None
    assert pulled.data["debt"] == "36.1667"
    assert debt.model_dump(mode="json", by_alias=True)["creditSales"] == "44.7500"

    fresh = customer_debt(connections, seller, add_customer(owner, business, seller.seller_id))
    assert (str(fresh.debt), str(fresh.credit_sales), str(fresh.abonos)) == ("0.0000", "0.0000", "0.0000")


def test_debt_of_an_unknown_deleted_or_foreign_customer_is_not_found(owner, connections):
    business = field_business(owner)
    seller, _ = devices(connections, business)
    deleted = add_customer(owner, business, seller.seller_id)
    owner.execute(
        "UPDATE field_sales.customers SET deleted_at = now() WHERE tenant_id = %s AND id = %s",
        (business.tenant_id, deleted),
    )
    other = field_business(owner)
    other_seller, _ = devices(connections, other)
    foreign = add_customer(owner, other, other_seller.seller_id)
    add_sale(owner, other, other_seller, client_id=foreign, paid="0")

    for customer in (uuid.uuid4(), deleted, foreign):
        with pytest.raises(ApiError) as refused:
            customer_debt(connections, seller, customer)
        assert (refused.value.status_code, refused.value.code) == (404, "not_found")
    assert customer_debt(connections, other_seller, foreign).debt == Decimal("24.7500")
