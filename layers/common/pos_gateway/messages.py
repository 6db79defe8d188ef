"""Messages passed between functions through SQS. They carry ids, never records."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.providers.models import Provider


class CreditRequest(BaseModel):
    """Ingest → crediting: process this stored raw event in this tenant."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    raw_event_id: UUID = Field(alias="rawEventId")
    tenant_id: UUID = Field(alias="tenantId")
    provider: Provider

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
