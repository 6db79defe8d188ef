"""Request bodies of the admin API: unknown fields refused, numbers never coerced from strings."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
Version = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
