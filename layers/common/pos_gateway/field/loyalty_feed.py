"""Field sales as loyalty events: the same pipeline as Square and Clover (provider ``field``).

A synced sale with a customer appends a raw event in the push's own transaction (so a sale and
its event land together or not at all), keyed ``{tenant}:sale:{saleId}``: the sale is credited
at most once however often it is pushed, enqueued or swept. A void of such a sale appends
``{tenant}:void:{voidId}``, which crediting reverses like a full refund.
"""

from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pos_gateway.money import minor_unit_exponent
from pos_gateway.providers.models import CustomerRef, PaymentRecord, Provider, RefundRecord


class FieldEventType(StrEnum):
    SALE_CREATED = "field.sale.created"
    SALE_VOIDED = "field.sale.voided"


class FieldCustomer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: UUID
    email: str | None = None
    phone: str | None = None  # as typed on the device
    country: str | None = None  # the tenant's: a local number is read as one of this country

    def mobile(self) -> str | None:
        """The phone in E.164, as members' mobiles are stored; None when it is not a valid number."""
        return e164(self.phone, self.country)


class FieldSaleEvent(BaseModel):
    """The raw payload of a synced sale (amounts as decimal strings, never floats)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    kind: Literal["sale"] = "sale"
    tenant_id: UUID
    sale_id: UUID
    seller_id: UUID
    total_amount: Decimal
    currency: str
    sale_date: AwareDatetime
    customer: FieldCustomer

    @property
    def provider_event_id(self) -> str:
        return sale_event_id(self.tenant_id, self.sale_id)

    def payment(self) -> PaymentRecord:
        return PaymentRecord(
            provider=Provider.FIELD,
            merchant_account_id=str(self.tenant_id),
            provider_transaction_id=str(self.sale_id),
            completed=True,
            amount_minor_units=minor_units(self.total_amount, self.currency),
            currency=self.currency,
            transaction_at=self.sale_date,
            customer=CustomerRef(
                email=self.customer.email,
                mobile=self.customer.mobile(),
                external_customer_id=str(self.customer.id),
            ),
        )


class FieldVoidEvent(BaseModel):
    """The raw payload of a void of a sale that was fed to loyalty."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    kind: Literal["void"] = "void"
    tenant_id: UUID
    void_id: UUID
    sale_id: UUID
    total_amount: Decimal
    currency: str
    voided_at: AwareDatetime

    @property
    def provider_event_id(self) -> str:
        return void_event_id(self.tenant_id, self.void_id)

    def refund(self) -> RefundRecord:
        return RefundRecord(
            provider=Provider.FIELD,
            merchant_account_id=str(self.tenant_id),
            provider_refund_id=str(self.void_id),
            provider_transaction_id=str(self.sale_id),
            completed=True,
            amount_minor_units=minor_units(self.total_amount, self.currency),
            currency=self.currency,
            refunded_at=self.voided_at,
        )


def sale_event_id(tenant_id: UUID, sale_id: UUID) -> str:
    """The raw event id of a sale fed to loyalty (a void looks its sale's event up by it)."""
    return f"{tenant_id}:sale:{sale_id}"


def void_event_id(tenant_id: UUID, void_id: UUID) -> str:
    """The raw event id of the void of a sale fed to loyalty."""
    return f"{tenant_id}:void:{void_id}"


def minor_units(amount: Decimal, currency: str) -> int:
    """An amount in the currency's minor unit; a fraction of a cent earns nothing (rounded down)."""
    scaled = amount.scaleb(minor_unit_exponent(currency))
    return int(scaled.to_integral_value(rounding=ROUND_DOWN))


def e164(phone: str | None, country: str | None) -> str | None:
    if not phone:
        return None
    # Imported here: only crediting of field sales needs the numbering plan metadata.
    import phonenumbers

    try:
        number = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def event_of(payload: dict[str, object]) -> FieldSaleEvent | FieldVoidEvent:
    """A stored field raw event's payload, parsed by its kind."""
    if payload.get("kind") == "void":
        return FieldVoidEvent.model_validate(payload)
    return FieldSaleEvent.model_validate(payload)
