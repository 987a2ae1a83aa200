"""The bodies the API accepts, as pydantic models (validated before a route runs: 422).

Limits are the library's: at most :data:`~gridtopo.outages.events.MAX_DEVICES` devices per
switching request, :data:`~gridtopo.outages.predict.MAX_CALLS` customers per prediction,
:data:`MAX_PAGE` customers per page.

>>> ImpactRequest(devices=["SB-00000006"], list_customers=True).limit
100
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from gridtopo.outages.events import MAX_DEVICES
from gridtopo.outages.predict import MAX_CALLS

MAX_PAGE = 1000
"""The most customers (or events) one page lists."""

Id = Annotated[str, Field(max_length=64)]
DeviceList = list[Id]


class SwitchingRequest(BaseModel):
    """Devices to open and normally-open ties to close (转供); at least one device in all."""

    devices: DeviceList = Field(default_factory=list, max_length=MAX_DEVICES)
    close: DeviceList = Field(default_factory=list, max_length=MAX_DEVICES)

    @model_validator(mode="after")
    def some_device(self) -> SwitchingRequest:
        """Refuse a request that switches nothing (422)."""
        if not self.devices and not self.close:
            raise ValueError("name at least one device to open (devices) or close (close)")
        return self


class ImpactRequest(SwitchingRequest):
    """Devices to open, ties to close, and whether to list the affected customers (a page)."""

    list_customers: bool = False
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0)


class DeclareRequest(SwitchingRequest):
    """A new outage event."""

    kind: Literal["planned", "unplanned"] = "unplanned"
    started_at: dt.datetime | None = None
    expected_end: dt.datetime | None = None
    reason: str | None = Field(None, max_length=1000)


class CloseRequest(BaseModel):
    """When an event ended (default: now)."""

    ended_at: dt.datetime | None = None


class PredictRequest(BaseModel):
    """Customers who called in about no supply."""

    customers: list[Id] = Field(min_length=1, max_length=MAX_CALLS)
