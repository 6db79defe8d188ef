"""Sales pushed by devices: created once, never changed; a delete is a void (admin_negocio only).

A sale, by the business settings of the moment it lands:

- with ``control_kilos`` takes its items from the inventory (refused beyond the stock unless
  ``permitir_venta_sin_stock``), and with ``usar_distribucion`` too counts its kilos and the money
  collected against the seller's open distribution (refused beyond the kilos assigned, likewise);
- on credit adds its balance due to the customer's debt;
- with a customer who has a phone or an email, feeds the loyalty pipeline (one raw event).

The sale row records what it took (``stock_decremented``, ``distribucion_kilos``), so its void
gives back exactly that. Rows are locked in one order everywhere: the customer, the
distribution, then the inventory by product id.
"""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from pos_gateway.db import queries
from pos_gateway.field import customers, distribuciones
from pos_gateway.field.context import (
    Applied,
    OperationContext,
    parse_data,
    problem,
    record_exists,
    record_void,
    unknown,
    unknown_reference,
    void_target,
)
from pos_gateway.field.loyalty_feed import (
    FieldCustomer,
    FieldEventType,
    FieldSaleEvent,
    FieldVoidEvent,
    sale_event_id,
)
from pos_gateway.field.operations import DistribucionEstado, NewSale, OperationRefused, SaleType
from pos_gateway.field.records import IMMUTABLE_VERSION

_SQL = queries.load(__file__, "sales.sql")
_KILOGRAM = "kg"


@dataclass(frozen=True, slots=True)
class _Reads:
    """Every read a sale may need, sent at once in the lock order (customer, distribution,
    inventory by product id): one round trip in the push's pipeline. A sale refused on the first
    of them took the later locks for nothing; the savepoint's rollback releases them."""

    existing: Cursor[DictRow]
    customer: Cursor[DictRow] | None
    distribution: Cursor[DictRow] | None  # the one named, else (counted) the seller's open one
    products: Cursor[DictRow]
    stock: Cursor[DictRow] | None


@dataclass(frozen=True, slots=True)
class _References:
    customer: DictRow | None
    distribution: DictRow | None  # the one the device named, if any
    units: dict[UUID, str]  # each item's product unit


@dataclass(frozen=True, slots=True)
class _Counted:
    """What the sale counts against a distribution."""

    distribucion_id: UUID
    kilos: Decimal


def create(context: OperationContext) -> Applied:
    sale = parse_data(NewSale, context.operation.data)
    wanted = _wanted(sale)
    reads = _send_reads(context, sale, wanted)
    if reads.existing.fetchone() is not None:
        raise record_exists(sale.id)
    references = _references(context, sale, reads)
    shortfalls: list[dict[str, Any]] = []
    counted = None
    if context.settings.counts_distribution:
        counted = _count_against_distribution(context, sale, references, reads, shortfalls)
    taken: dict[UUID, Decimal] = {}
    if reads.stock is not None:
        taken = _take_stock(context, sale, wanted, reads.stock, shortfalls)
    if shortfalls:
        raise OperationRefused("insufficient_stock", "the sale needs more than there is", shortfalls)
    _write_sale(context, sale, references, counted)
    if taken:
        context.run(
            _SQL.move_stock, product_ids=list(taken), deltas=[-quantity for quantity in taken.values()]
        )
    if counted is not None:
        distribuciones.count_sale(context, counted.distribucion_id, counted.kilos, sale.amount_paid)
    if sale.sale_type is SaleType.CREDITO and sale.due > 0 and sale.client_id is not None:
        customers.add_debt(context, sale.client_id, sale.due)
    if references.customer is not None:
        _feed_loyalty(context, sale, references.customer)
    return Applied(sale.id, IMMUTABLE_VERSION)


def void(context: OperationContext) -> Applied:
    """The sale's compensating record: everything the sale did is undone in the same locks."""
    ref, sale = void_target(context, "sale", _SQL.find_sale)
    if sale["sale_type"] == SaleType.CREDITO and sale["balance_due"] > 0:
        customers.lock(context, sale["client_id"])
        customers.add_debt(context, sale["client_id"], -sale["balance_due"])
    if sale["distribucion_kilos"] is not None:
        distribuciones.lock(context, sale["distribucion_id"])
        distribuciones.count_sale(
            context, sale["distribucion_id"], -sale["distribucion_kilos"], -sale["amount_paid"]
        )
    if sale["stock_decremented"]:
        given_back = {
            row["product_id"]: row["quantity"]
            for row in context.fetch_all(_SQL.sold_quantities, sale_id=ref.id)
        }
        context.fetch_all(_SQL.lock_stock, product_ids=list(given_back))
        context.run(_SQL.move_stock, product_ids=list(given_back), deltas=list(given_back.values()))
    void_id = record_void(context, ref.reason, sale_id=ref.id)
    _feed_loyalty_void(context, sale, void_id)
    return Applied(ref.id, IMMUTABLE_VERSION)


# ---------------------------------------------------------------- checks (nothing written)


def _send_reads(context: OperationContext, sale: NewSale, wanted: dict[UUID, Decimal]) -> _Reads:
    existing = context.send(_SQL.find_sale, id=sale.id)
    customer = None
    if sale.client_id is not None:
        customer = customers.send_lock(context, sale.client_id)
    distribution = None
    if sale.distribucion_id is not None:
        distribution = distribuciones.send_lock(context, sale.distribucion_id)
    elif context.settings.counts_distribution:
        distribution = distribuciones.send_lock_open_of(context, context.device.seller_id)
    product_ids = list({item.product_id for item in sale.items})
    products = context.send(_SQL.sellable_products, product_ids=product_ids)
    stock = None
    if context.settings.control_kilos:
        stock = context.send(_SQL.lock_stock, product_ids=list(wanted))
    return _Reads(existing, customer, distribution, products, stock)


def _references(context: OperationContext, sale: NewSale, reads: _Reads) -> _References:
    """Every record the sale names, in one refusal when some do not exist; the customer and the
    named distribution are locked (the first rows of the lock order)."""
    missing: list[dict[str, Any]] = []
    customer = None
    if sale.client_id is not None and reads.customer is not None:
        customer = reads.customer.fetchone()
        if customer is None or customer["deleted_at"] is not None:
            missing.append(unknown("data.clientId", "customer", sale.client_id))
    distribution = None
    if sale.distribucion_id is not None and reads.distribution is not None:
        distribution = reads.distribution.fetchone()
        if distribution is None:
            missing.append(unknown("data.distribucionId", "distribution", sale.distribucion_id))
    units = {row["id"]: row["unit"] for row in reads.products.fetchall()}
    missing += [
        unknown(f"data.items.{index}.productId", "product", item.product_id)
        for index, item in enumerate(sale.items)
        if item.product_id not in units
    ]
    if missing:
        raise unknown_reference(missing)
    return _References(customer, distribution, units)


def _count_against_distribution(
    context: OperationContext,
    sale: NewSale,
    references: _References,
    reads: _Reads,
    shortfalls: list[dict[str, Any]],
) -> _Counted:
    distribution = _seller_distribution(context, references.distribution, reads.distribution)
    # The scale's net weight; a device that did not weigh sends 0: the kilos of its kg lines.
    kilos = sale.net_weight or sum(
        (item.quantity for item in sale.items if references.units[item.product_id] == _KILOGRAM), Decimal(0)
    )
    left: Decimal = distribution["kilos_asignados"] - distribution["kilos_vendidos"]
    if not context.settings.permitir_venta_sin_stock and kilos > left:
        shortfalls.append(
            problem(
                "data.distribucionId",
                "insufficient_stock",
                "more kilos than are left in the seller's distribution",
                distribucionId=str(distribution["id"]),
                available=str(left),
                requested=str(kilos),
            )
        )
    return _Counted(distribution["id"], kilos)


def _seller_distribution(
    context: OperationContext, named: DictRow | None, open_of_seller: Cursor[DictRow] | None
) -> DictRow:
    """The distribution the sale counts against: the one named (the seller's own, open), else the
    seller's open one (``open_of_seller``, read when none was named)."""
    seller_id = context.device.seller_id
    if named is None:
        found = open_of_seller.fetchone() if open_of_seller is not None else None
        if found is None:
            raise OperationRefused(
                "no_open_distribution",
                "the seller has no open distribution to sell from",
                [problem("data.distribucionId", "no_open_distribution", "ask for today's distribution")],
            )
        return found
    if named["vendedor_id"] != seller_id:
        raise OperationRefused(
            "not_own_distribution",
            "a seller sells from their own distribution only",
            [problem("data.distribucionId", "not_own_distribution", "another seller's distribution")],
        )
    if named["estado"] == DistribucionEstado.CERRADO:
        raise OperationRefused(
            "distribution_closed",
            "the distribution is closed",
            [problem("data.distribucionId", "distribution_closed", "closed distributions sell nothing")],
        )
    return named


def _wanted(sale: NewSale) -> dict[UUID, Decimal]:
    """The quantity per product, in product id order (the inventory's lock order)."""
    wanted: dict[UUID, Decimal] = defaultdict(Decimal)
    for item in sale.items:
        wanted[item.product_id] += item.quantity
    return dict(sorted(wanted.items()))


def _take_stock(
    context: OperationContext,
    sale: NewSale,
    taken: dict[UUID, Decimal],
    locked: Cursor[DictRow],
    shortfalls: list[dict[str, Any]],
) -> dict[UUID, Decimal]:
    """The quantity per product (in product id order), with the stock rows locked."""
    first_line: dict[UUID, int] = {}
    for index, item in enumerate(sale.items):
        first_line.setdefault(item.product_id, index)
    rows = locked.fetchall()
    if context.settings.permitir_venta_sin_stock:
        return taken
    stock = {row["product_id"]: row["quantity"] for row in rows}
    shortfalls += [
        problem(
            f"data.items.{first_line[product_id]}.quantity",
            "insufficient_stock",
            "more than the product's stock",
            productId=str(product_id),
            available=str(stock.get(product_id, Decimal("0.000"))),
            requested=str(quantity),
        )
        for product_id, quantity in taken.items()
        if quantity > stock.get(product_id, Decimal(0))
    ]
    return taken


# ---------------------------------------------------------------- writes


def _write_sale(
    context: OperationContext, sale: NewSale, references: _References, counted: _Counted | None
) -> None:
    named = references.distribution
    distribucion_id = counted.distribucion_id if counted is not None else (named["id"] if named else None)
    context.write(
        _SQL.insert_sale,
        id=sale.id,
        client_id=sale.client_id,
        seller_id=context.device.seller_id,
        distribucion_id=distribucion_id,
        sale_type=sale.sale_type.value,
        total_amount=sale.total_amount,
        amount_paid=sale.amount_paid,
        balance_due=sale.due,
        tara=sale.tara,
        net_weight=sale.net_weight,
        currency=context.settings.currency,
        sale_date=sale.sale_date,
        device_id=context.device.device_id,
        stock_decremented=context.settings.control_kilos,
        distribucion_kilos=counted.kilos if counted is not None else None,
    )
    context.run(
        _SQL.insert_sale_items,
        sale_id=sale.id,
        product_ids=[item.product_id for item in sale.items],
        product_names=[item.product_name for item in sale.items],
        quantities=[item.quantity for item in sale.items],
        unit_prices=[item.unit_price for item in sale.items],
        subtotals=[item.subtotal for item in sale.items],
    )


def _feed_loyalty(context: OperationContext, sale: NewSale, customer: DictRow) -> None:
    """A sale to a customer loyalty can recognise (phone or email) earns points once."""
    if not (customer["phone"] or customer["email"]):
        return
    event = FieldSaleEvent(
        tenant_id=context.tenant_id,
        sale_id=sale.id,
        seller_id=context.device.seller_id,
        total_amount=sale.total_amount,
        currency=context.settings.currency,
        sale_date=sale.sale_date,
        customer=FieldCustomer(
            id=customer["id"],
            email=customer["email"],
            phone=customer["phone"],
            country=context.device.country,
        ),
    )
    _append_event(context, event)


def _feed_loyalty_void(context: OperationContext, sale: DictRow, void_id: UUID) -> None:
    """The void of a sale that was fed to loyalty takes its points back."""
    fed = context.fetch_one(
        _SQL.loyalty_event, provider_event_id=sale_event_id(context.tenant_id, sale["id"])
    )
    if fed is None:
        return
    event = FieldVoidEvent(
        tenant_id=context.tenant_id,
        void_id=void_id,
        sale_id=sale["id"],
        total_amount=sale["total_amount"],
        currency=sale["currency"],
        voided_at=context.operation.client_created_at,
    )
    _append_event(context, event)


def _append_event(context: OperationContext, event: FieldSaleEvent | FieldVoidEvent) -> None:
    event_type = (
        FieldEventType.SALE_VOIDED if isinstance(event, FieldVoidEvent) else FieldEventType.SALE_CREATED
    )
    context.append_event(
        _SQL.append_loyalty_event,
        event_type=event_type.value,
        provider_event_id=event.provider_event_id,
        merchant_account_id=str(context.tenant_id),
        raw_body=event.model_dump_json(by_alias=True),
    )
