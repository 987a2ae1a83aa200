"""What the call-centre routes accept: trouble calls, meter events, dispatcher decisions.

The same edge checks as :mod:`gridtopo.api.schemas` (ids, date-times, free text); a call's
``location`` is ``{"lon", "lat", "crs"}`` with ``crs`` ``wgs84`` (default) or ``gcj02``.

>>> CallRequest(call_id="95598-1", phone="13800000000", trouble="no_supply").channel is None
True
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from gridtopo.api.schemas import Id, Moment, Reason
from gridtopo.db.models import CALL_TROUBLES
from gridtopo.outages.calls import CallIn
from gridtopo.outages.meters import MAX_EVENTS, MeterEventIn

Trouble = Literal[CALL_TROUBLES]  # type: ignore[valid-type]


class Location(BaseModel):
    """A point from a phone map."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Literal["wgs84", "gcj02"] = "wgs84"


class CallRequest(BaseModel):
    """``POST /v1/calls``: one trouble call; ``call_id`` is the idempotency key, and one of
    ``customer_id``, ``phone``, ``meter_id`` or ``location`` names the caller."""

    call_id: Id
    customer_id: Id | None = None
    phone: Id | None = None
    meter_id: Id | None = None
    location: Location | None = None
    trouble: Trouble
    channel: Id | None = Field(None, max_length=32)
    at: Moment | None = None
    text: Reason | None = None
    photo: Reason | None = None

    @model_validator(mode="after")
    def some_caller(self) -> CallRequest:
        """Refuse a call naming no caller (422)."""
        if not (self.customer_id or self.phone or self.meter_id or self.location):
            raise ValueError("name the caller: customer_id, phone, meter_id or location")
        return self

    def call(self) -> CallIn:
        """As the library takes it."""
        where = (self.location.lon, self.location.lat, self.location.crs) \
            if self.location else None
        return CallIn(self.call_id, self.trouble, self.at, self.customer_id, self.phone,
                      self.meter_id, where, self.channel, self.text, self.photo)


class MeterEventItem(BaseModel):
    """A last gasp or power-on of a meter, or a device telemetry reports closed."""

    meter_id: Id | None = None
    device_id: Id | None = None
    kind: Literal["power_off", "power_on", "closed"]
    at: Moment

    @model_validator(mode="after")
    def source(self) -> MeterEventItem:
        """``meter_id`` for power_off/power_on, ``device_id`` for closed (422)."""
        wanted = "device_id" if self.kind == "closed" else "meter_id"
        if getattr(self, wanted) is None:
            raise ValueError(f"kind {self.kind} needs {wanted}")
        return self

    def event(self) -> MeterEventIn:
        """As the library takes it."""
        return MeterEventIn((self.device_id if self.kind == "closed" else self.meter_id) or "",
                            self.kind, self.at)


class MeterEvents(BaseModel):
    """``POST /v1/meter-events``: a batch from the AMI head-end."""

    events: list[MeterEventItem] = Field(min_length=1, max_length=MAX_EVENTS)


class ConfirmRequest(BaseModel):
    """Confirming a prediction: the event's expected end (ETR) and reason, optional."""

    expected_end: Moment | None = None
    reason: Reason | None = None


class MergeRequest(BaseModel):
    """Merging a prediction into another."""

    into: int = Field(ge=1, le=2**31 - 1)


class RetargetRequest(BaseModel):
    """Re-targeting a prediction to another device."""

    device: Id


class CancelRequest(BaseModel):
    """Cancelling a prediction, with why."""

    note: Reason | None = None
