"""Provider-neutral shapes that every adapter normalizes into."""

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Provider(StrEnum):
    SQUARE = "square"
    CLOVER = "clover"
    FIELD = "field"  # offline field-sales devices (pos_gateway.field), authenticated per device


class CustomerRef(BaseModel):
    """Who paid, as far as the provider told us; used to find the loyalty member."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    email: str | None = None
    mobile: str | None = None
    external_customer_id: str | None = Field(default=None, alias="externalCustomerId")

    def is_anonymous(self) -> bool:
        return self.email is None and self.mobile is None


class PaymentRecord(BaseModel):
    """A payment as the loyalty pipeline sees it, whatever provider it came from."""

    model_config = ConfigDict(frozen=True)

    provider: Provider
    merchant_account_id: str
    provider_transaction_id: str
    completed: bool
    amount_minor_units: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    transaction_at: AwareDatetime
    customer: CustomerRef

    @property
    def idempotency_key(self) -> str:
        return f"{self.provider}:{self.merchant_account_id}:{self.provider_transaction_id}"


class RefundRecord(BaseModel):
    """A refund of a payment, as the loyalty pipeline sees it."""

    model_config = ConfigDict(frozen=True)

    provider: Provider
    merchant_account_id: str
    provider_refund_id: str
    provider_transaction_id: str  # the refunded payment
    completed: bool
    amount_minor_units: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    refunded_at: AwareDatetime

    @property
    def idempotency_key(self) -> str:
        return f"{self.provider}:{self.merchant_account_id}:refund:{self.provider_refund_id}"
