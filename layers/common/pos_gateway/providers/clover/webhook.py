"""Clover's webhook: the one-time verification POST, the auth-code header and the message body.

A message is ``{"appId": ..., "merchants": {"<mId>": [{"objectId": "P:<id>", "type": "UPDATE",
"ts": <ms>}, ...]}}``: several merchants, each with several updates. The object id's prefix says
what changed (``P`` payments, ``O`` orders, ``C`` customers, ...); the update carries no data, the
object is fetched from the REST API when it is processed.
"""

import hmac
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CLOVER_AUTH_HEADER = "x-clover-auth"  # HTTP API v2 lowercases header names

# Merchant, app and object ids are short upper-case alphanumerics; anything printable is accepted
# (and stored) so that one odd id never costs the other updates of a delivery.
_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_ObjectId = Annotated[
    str, StringConstraints(min_length=3, max_length=128, pattern=r"^[A-Z]{1,8}:[\x21-\x7e]+$")
]

OBJECT_KINDS = {"P": "payment", "O": "order", "C": "customer", "I": "item", "E": "employee", "M": "merchant"}


def is_valid_auth_code(expected: str, received: str | None) -> bool:
    """Constant-time comparison of the X-Clover-Auth header with the configured code."""
    if not expected or not received:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), received.strip().encode("utf-8", "replace"))


class CloverVerification(BaseModel):
    """The one-time POST Clover sends when the webhook URL is (re)configured."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    verification_code: str = Field(alias="verificationCode", pattern=r"^[A-Za-z0-9-]{8,128}$")


class CloverUpdate(BaseModel):
    """One change of one object of one merchant."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    object_id: _ObjectId = Field(alias="objectId")
    type: str = Field(pattern=r"^[A-Z_]{1,32}$")  # CREATE, UPDATE, DELETE
    ts: int = Field(ge=0, le=10**15)  # epoch milliseconds

    @property
    def prefix(self) -> str:
        return self.object_id.split(":", 1)[0]

    @property
    def bare_id(self) -> str:
        return self.object_id.split(":", 1)[1]

    @property
    def kind(self) -> str:
        return OBJECT_KINDS.get(self.prefix, "other")


class CloverNotification(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    app_id: _Id | None = Field(default=None, alias="appId")
    merchants: dict[_Id, list[CloverUpdate]]

    def updates(self) -> list["MerchantUpdate"]:
        return [
            MerchantUpdate(merchant_id=merchant_id, app_id=self.app_id, update=update)
            for merchant_id, updates in self.merchants.items()
            for update in updates
        ]


class MerchantUpdate(BaseModel):
    """One update with its merchant: what one raw event holds (its ``raw_payload``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    merchant_id: _Id = Field(alias="merchantId")
    app_id: _Id | None = Field(default=None, alias="appId")
    update: CloverUpdate

    @property
    def provider_event_id(self) -> str:
        """Clover has no event id: a delivery of the same change repeats merchant, object, type and ts."""
        return f"{self.merchant_id}:{self.update.object_id}:{self.update.type}:{self.update.ts}"

    @property
    def event_type(self) -> str:
        return f"{self.update.kind}.{self.update.type.lower()}"

    @property
    def is_payment_change(self) -> bool:
        return self.update.prefix == "P" and self.update.type in {"CREATE", "UPDATE"}

    def to_payload(self) -> dict[str, Any]:
        return {
            "merchantId": self.merchant_id,
            "appId": self.app_id,
            "objectId": self.update.object_id,
            "type": self.update.type,
            "ts": self.update.ts,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "MerchantUpdate":
        return cls.model_validate(
            {
                "merchantId": payload.get("merchantId"),
                "appId": payload.get("appId"),
                "update": {k: payload.get(k) for k in ("objectId", "type", "ts")},
            }
        )
