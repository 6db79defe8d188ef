"""Field sales in the crediting pipeline: a sale earns like a payment, once; its void reverses it.

The raw events are written here as the push writes them (same payload models), so crediting is
tested on its own; tests/integration/test_field_push.py covers the push writing them.
"""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from local import seed
from pos_gateway.field.loyalty_feed import FieldCustomer, FieldSaleEvent, FieldVoidEvent, e164, minor_units
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.loyalty.linking import link_member
from pos_gateway.loyalty.models import ProcessingOutcome
from pos_gateway.loyalty.reversal import RefundBeforePayment
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from tests.field_support import field_business
from tests.helpers import count, one, unique

SOLD_AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def _phone() -> tuple[str, str]:
    """A Peruvian mobile as a seller types it, and as the member's account stores it (E.164)."""
    digits = "9" + str(uuid.uuid4().int)[:8]
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}", f"+51{digits}"


def _append(owner: psycopg.Connection[Any], event: FieldSaleEvent | FieldVoidEvent) -> CreditRequest:
    body = event.model_dump_json(by_alias=True)
    row = one(
        owner.execute(
            "INSERT INTO pos.pos_webhook_events_raw (tenant_id, provider, event_type, provider_event_id,"
            " merchant_account_id, raw_payload, raw_body) VALUES (%s, 'field', %s, %s, %s, %s::jsonb, %s)"
            " RETURNING id",
            (
                event.tenant_id,
                "field.sale.voided" if isinstance(event, FieldVoidEvent) else "field.sale.created",
                event.provider_event_id,
                str(event.tenant_id),
                body,
                body,
            ),
        ).fetchone()
    )
    return CreditRequest(raw_event_id=row["id"], tenant_id=event.tenant_id, provider=Provider.FIELD)


def _sale(tenant_id: uuid.UUID, seller_id: uuid.UUID, total: str, phone: str) -> FieldSaleEvent:
    return FieldSaleEvent(
        tenant_id=tenant_id,
        sale_id=uuid.uuid4(),
        seller_id=seller_id,
        total_amount=Decimal(total),
        currency="PEN",
        sale_date=SOLD_AT,
        customer=FieldCustomer(id=uuid.uuid4(), phone=phone, country="PE"),
    )


def _balance(owner: psycopg.Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    row = owner.execute(
        "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
        (tenant_id, user_id),
    ).fetchone()
    return 0 if row is None else int(row["points_balance"])


def test_a_local_phone_is_read_in_the_tenants_country() -> None:
    assert e164("987 654 321", "PE") == "+51987654321"
    assert e164("+51 987-654-321", "US") == "+51987654321"
    assert e164("12", "PE") is None
    assert e164(None, "PE") is None


def test_minor_units_round_fractions_of_a_cent_down() -> None:
    assert minor_units(Decimal("24.7500"), "PEN") == 2475
    assert minor_units(Decimal("24.7599"), "PEN") == 2475
    assert minor_units(Decimal("1000"), "JPY") == 1000


def test_a_members_field_sale_earns_once_however_often_it_is_processed(
    owner: psycopg.Connection[Any], crediting: CreditingService
) -> None:
    business = field_business(owner)
    phone, mobile = _phone()
    member = seed.create_user(owner, mobile=mobile)
    request = _append(owner, _sale(business.tenant_id, business.seller.seller_id, "24.75", phone))

    first = crediting.process(request)
    again = crediting.process(request)

    assert first.outcome is ProcessingOutcome.CREDITED
    assert first.points_earned == 24
    assert again.outcome is ProcessingOutcome.ALREADY_PROCESSED
    assert _balance(owner, business.tenant_id, member) == 24
    transaction = one(
        owner.execute(
            "SELECT provider, user_id, amount_minor_units, currency FROM pos.transactions"
            " WHERE raw_event_id = %s",
            (request.raw_event_id,),
        ).fetchone()
    )
    assert transaction == {
        "provider": "field",
        "user_id": member,
        "amount_minor_units": 2475,
        "currency": "PEN",
    }


def test_a_second_raw_event_of_the_same_sale_cannot_be_stored(
    owner: psycopg.Connection[Any], crediting: CreditingService
) -> None:
    business = field_business(owner)
    event = _sale(business.tenant_id, business.seller.seller_id, "10.00", _phone()[0])
    _append(owner, event)

    with pytest.raises(psycopg.errors.UniqueViolation):
        _append(owner, event)


def test_a_void_reverses_the_sales_points(
    owner: psycopg.Connection[Any], crediting: CreditingService
) -> None:
    business = field_business(owner)
    phone, mobile = _phone()
    member = seed.create_user(owner, mobile=mobile)
    sale = _sale(business.tenant_id, business.seller.seller_id, "50.00", phone)
    crediting.process(_append(owner, sale))
    void = FieldVoidEvent(
        tenant_id=business.tenant_id,
        void_id=uuid.uuid4(),
        sale_id=sale.sale_id,
        total_amount=sale.total_amount,
        currency="PEN",
        voided_at=SOLD_AT,
    )

    result = crediting.process(_append(owner, void))

    assert result.outcome is ProcessingOutcome.REVERSED
    assert result.points_reversed == 50
    assert _balance(owner, business.tenant_id, member) == 0


def test_a_void_that_arrives_before_its_sale_is_retried(
    owner: psycopg.Connection[Any], crediting: CreditingService
) -> None:
    business = field_business(owner)
    void = FieldVoidEvent(
        tenant_id=business.tenant_id,
        void_id=uuid.uuid4(),
        sale_id=uuid.uuid4(),
        total_amount=Decimal("5"),
        currency="PEN",
        voided_at=SOLD_AT,
    )
    request = _append(owner, void)

    with pytest.raises(RefundBeforePayment):
        crediting.process(request)
    assert (
        count(owner, "SELECT count(*) AS n FROM pos.refunds WHERE tenant_id = %s", (business.tenant_id,)) == 0
    )


def test_a_customer_who_joins_later_is_credited_by_customer_linking(
    owner: psycopg.Connection[Any], crediting: CreditingService, database: Any
) -> None:
    business = field_business(owner)
    phone, mobile = _phone()
    result = crediting.process(
        _append(owner, _sale(business.tenant_id, business.seller.seller_id, "30.00", phone))
    )
    assert result.outcome is ProcessingOutcome.ANONYMOUS

    member = seed.create_user(owner, mobile=mobile, full_name=unique("Cliente "))
    linked = link_member(database.connections("pos_gateway_crediting"), business.tenant_id, member)

    assert (linked.transactions_claimed, linked.points_earned) == (1, 30)
    assert _balance(owner, business.tenant_id, member) == 30
