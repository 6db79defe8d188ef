"""Square's webhook envelope and payment object, validated at the edge."""

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pos_gateway.providers.models import CustomerRef, PaymentRecord, Provider, RefundRecord

PAYMENT_EVENT_TYPES = frozenset({"payment.created", "payment.updated"})
REFUND_EVENT_TYPES = frozenset({"refund.created", "refund.updated"})


class SquareMoney(BaseModel):
    amount: int = Field(ge=0, le=10**15)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class SquarePayment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    status: str = Field(min_length=1, max_length=32)
    amount_money: SquareMoney
    created_at: AwareDatetime
    customer_id: str | None = Field(default=None, max_length=255)
    buyer_email_address: str | None = Field(default=None, max_length=320)
    location_id: str | None = None
    order_id: str | None = None


class _PaymentObject(BaseModel):
    payment: SquarePayment


class SquareRefund(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    status: str = Field(min_length=1, max_length=32)
    amount_money: SquareMoney
    payment_id: str = Field(min_length=1, max_length=255)
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None


class _RefundObject(BaseModel):
    refund: SquareRefund


class SquareEventData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=100)
    id: str = Field(min_length=1, max_length=255)
    object: dict[str, Any] | None = None


class SquareEvent(BaseModel):
    """The envelope every Square webhook carries."""

    model_config = ConfigDict(extra="ignore")

    merchant_id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    event_id: str = Field(min_length=1, max_length=255)
    created_at: AwareDatetime
    data: SquareEventData

    @property
    def is_payment(self) -> bool:
        return self.type in PAYMENT_EVENT_TYPES

    @property
    def is_refund(self) -> bool:
        return self.type in REFUND_EVENT_TYPES

    def payment(self) -> SquarePayment:
        """The payment object of a payment.* event (raises ValidationError when malformed)."""
        return _PaymentObject.model_validate(self.data.object or {}).payment

    def refund(self) -> SquareRefund:
        """The refund object of a refund.* event (raises ValidationError when malformed)."""
        return _RefundObject.model_validate(self.data.object or {}).refund


def parse_event(body: bytes) -> SquareEvent:
    """Parse and validate a webhook body; payment and refund events must carry a valid object.

    Raises pydantic.ValidationError for malformed JSON or anything that is not a Square event.
    """
    event = SquareEvent.model_validate_json(body)
    if event.is_payment:
        event.payment()
    elif event.is_refund:
        event.refund()
    return event


def payment_record(event: SquareEvent) -> PaymentRecord:
    """Normalize a payment.* event. Points are earned on amount_money (tips excluded)."""
    payment = event.payment()
    email = payment.buyer_email_address.strip().lower() if payment.buyer_email_address else None
    return PaymentRecord(
        provider=Provider.SQUARE,
        merchant_account_id=event.merchant_id,
        provider_transaction_id=payment.id,
        completed=payment.status == "COMPLETED",
        amount_minor_units=payment.amount_money.amount,
        currency=payment.amount_money.currency,
        transaction_at=payment.created_at,
        customer=CustomerRef(email=email or None, external_customer_id=payment.customer_id),
    )


def refund_record(event: SquareEvent) -> RefundRecord:
    """Normalize a refund.* event; only a COMPLETED refund takes points back."""
    refund = event.refund()
    return RefundRecord(
        provider=Provider.SQUARE,
        merchant_account_id=event.merchant_id,
        provider_refund_id=refund.id,
        provider_transaction_id=refund.payment_id,
        completed=refund.status == "COMPLETED",
        amount_minor_units=refund.amount_money.amount,
        currency=refund.amount_money.currency,
        refunded_at=refund.updated_at or refund.created_at,
    )
