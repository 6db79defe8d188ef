"""Request bodies of the admin API: unknown fields refused, numbers never coerced from strings."""

from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatchBody(RequestBody):
    """A partial update: only the fields present change. A subclass names the fields a PATCH may
    set (``patchable``) and those it may not clear with ``null`` (``not_null``)."""

    patchable: ClassVar[tuple[str, ...]]
    not_null: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name in cls.not_null:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set & set(self.patchable):
            raise ValueError(f"the body changes nothing: give at least one of {', '.join(self.patchable)}")
        return self

    def requested(self) -> dict[str, Any]:
        """The fields the request set, with their values (None clears)."""
        return {name: getattr(self, name) for name in self.patchable if name in self.model_fields_set}

    def set_parameters(self) -> dict[str, Any]:
        """Parameters of an UPDATE that sets only what was requested: each field's value and
        ``set_<field>`` telling whether the request named it."""
        parameters: dict[str, Any] = {}
        for name in self.patchable:
            parameters[f"set_{name}"] = name in self.model_fields_set
            parameters[name] = getattr(self, name)
        return parameters


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
Version = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
