"""Clover's payment (``GET /v3/merchants/{mId}/payments/{id}``) and its normalization.

Amounts are integer cents; ``amount`` excludes the tip (``tipAmount``), as points are earned on
the sale. Times are epoch milliseconds. Expanded lists come as ``{"elements": [...]}``. Only
``result == "SUCCESS"`` is a completed payment. The currency is the order's; a payment fetched
without its order falls back to the merchant's default.
"""

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.providers.models import CustomerRef, PaymentRecord, Provider, RefundRecord

# The payment's expansions: its refunds, and its order's customers with their contacts
# (Clover allows at most three expanded fields per call).
PAYMENT_EXPANSIONS = ("refunds", "order.customers.emailAddresses", "order.customers.phoneNumbers")

# Epoch milliseconds of the last instant Python's datetime holds (9999-12-31T23:59:59.999Z).
LAST_EPOCH_MS = 253_402_300_799_999
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=64)


class _EmailAddress(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    email_address: str | None = Field(default=None, alias="emailAddress", max_length=320)


class _PhoneNumber(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    phone_number: str | None = Field(default=None, alias="phoneNumber", max_length=64)


class _Emails(BaseModel):
    elements: list[_EmailAddress] = []


class _Phones(BaseModel):
    elements: list[_PhoneNumber] = []


class CloverCustomer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=64)
    email_addresses: _Emails = Field(default_factory=_Emails, alias="emailAddresses")
    phone_numbers: _Phones = Field(default_factory=_Phones, alias="phoneNumbers")


class _Customers(BaseModel):
    elements: list[CloverCustomer] = []


class CloverOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=64)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    customers: _Customers = Field(default_factory=_Customers)


class CloverRefund(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=64)
    amount: int = Field(ge=0, le=10**15)
    created_time: int = Field(alias="createdTime", ge=0, le=LAST_EPOCH_MS)
    status: str | None = Field(default=None, max_length=32)
    voided: bool = False

    @property
    def completed(self) -> bool:
        return not self.voided and self.status in (None, "SUCCESS") and self.amount > 0


class _Refunds(BaseModel):
    elements: list[CloverRefund] = []


class CloverPayment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=64)
    amount: int = Field(ge=0, le=10**15)
    tip_amount: int | None = Field(default=None, alias="tipAmount")
    result: str = Field(min_length=1, max_length=32)
    created_time: int = Field(alias="createdTime", ge=0, le=LAST_EPOCH_MS)
    order: CloverOrder | None = None
    refunds: _Refunds = Field(default_factory=_Refunds)

    @property
    def completed(self) -> bool:
        return self.result == "SUCCESS"


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def normalize_email(value: str | None) -> str | None:
    email = (value or "").strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: str | None, default_country_code: str = "1") -> str | None:
    """E.164 when the number says its country (``+``/``00``) or is a national number of the
    default country (NANP: 10 digits, or 11 starting with 1); otherwise None (no mobile match)."""
    phone = _PHONE_PUNCTUATION.sub("", (value or "").strip())
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    elif phone.isdigit() and default_country_code == "1":
        if len(phone) == 10:
            phone = "+1" + phone
        elif len(phone) == 11 and phone.startswith("1"):
            phone = "+" + phone
    return phone if _E164.match(phone) else None


def customer_of(payment: CloverPayment, default_country_code: str = "1") -> CustomerRef:
    """The order's first customer with the first usable email and phone, if the order has one."""
    customers = payment.order.customers.elements if payment.order else []
    if not customers:
        return CustomerRef()
    customer = customers[0]
    emails = (normalize_email(e.email_address) for e in customer.email_addresses.elements)
    phones = (normalize_phone(p.phone_number, default_country_code) for p in customer.phone_numbers.elements)
    return CustomerRef(
        email=next((e for e in emails if e), None),
        mobile=next((p for p in phones if p), None),
        external_customer_id=customer.id,
    )


def currency_of(payment: CloverPayment, default_currency: str) -> str:
    return payment.order.currency if payment.order and payment.order.currency else default_currency


def payment_record(
    merchant_id: str,
    payment: CloverPayment,
    *,
    default_currency: str = "USD",
    default_country_code: str = "1",
) -> PaymentRecord:
    return PaymentRecord(
        provider=Provider.CLOVER,
        merchant_account_id=merchant_id,
        provider_transaction_id=payment.id,
        completed=payment.completed,
        amount_minor_units=payment.amount,
        currency=currency_of(payment, default_currency),
        transaction_at=_at(payment.created_time),
        customer=customer_of(payment, default_country_code),
    )


def refund_records(
    merchant_id: str, payment: CloverPayment, *, default_currency: str = "USD"
) -> list[RefundRecord]:
    """The payment's refunds; only completed, non-zero ones take points back."""
    currency = currency_of(payment, default_currency)
    return [
        RefundRecord(
            provider=Provider.CLOVER,
            merchant_account_id=merchant_id,
            provider_refund_id=refund.id,
            provider_transaction_id=payment.id,
            completed=refund.completed,
            amount_minor_units=refund.amount,
            currency=currency,
            refunded_at=_at(refund.created_time),
        )
        for refund in payment.refunds.elements
    ]
