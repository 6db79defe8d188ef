"""Instants and dates taken from requests: time-zone aware, and within the years the service
handles, so that what is stored can always be read back (Python's datetime ends at year 9999,
an offset can push an instant past it, and a device with a broken clock is not a sale date)."""

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _instant_in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST.year} to {LATEST.year - 1} (UTC)")
    return value


def _date_in_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be from {EARLIEST.year} to {LATEST.year - 1}")
    return value


# ``EARLIEST <= value`` compares in UTC whatever the offset; a naive value never gets here.
Instant = Annotated[AwareDatetime, AfterValidator(_instant_in_range)]
Day = Annotated[date, AfterValidator(_date_in_range)]
