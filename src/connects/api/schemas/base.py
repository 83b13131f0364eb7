"""The shared pieces of every body: strict numbers, UTC times, text without NUL, the
base models, pages and errors.

Connects are whole numbers; money is integer cents beside a ``currency``; times are
RFC 3339 UTC strings (``2026-01-15T09:00:00Z``). Numbers are strict (``"5"`` and
``true`` are not numbers) and bounded, so an oversized value is refused as
``invalid_request`` before it reaches the database (R32).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    WithJsonSchema,
)

INT32 = 2**31 - 1
MAX_CENTS = 10**12


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): not text at all
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcTime = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Text = Annotated[str, AfterValidator(_no_nul)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT32)]
Flag = Annotated[bool, Strict()]  # only JSON true or false, never "yes" or 1
Cents = Annotated[int, Strict(), Field(ge=0, le=MAX_CENTS)]

T = TypeVar("T")


class Model(BaseModel):
    """A response body; fields may be added over time, never renamed."""

    model_config = ConfigDict(from_attributes=True)


class Body(BaseModel):
    """A request body (POST). Unknown fields are ignored (tolerant reader)."""


class ChangeBody(Body):
    """A PATCH or PUT body: an unknown field is refused (422 ``invalid_request`` naming
    it), since a misspelt one would otherwise leave the setting it meant unchanged."""

    model_config = ConfigDict(extra="forbid")


class Page(Model, Generic[T]):
    """One page of a list: follow ``next_cursor`` until it is null."""

    items: list[T]
    next_cursor: str | None = None


class ErrorDetail(BaseModel):
    code: str = Field(examples=["insufficient_connects"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail
