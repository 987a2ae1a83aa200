"""What the API accepts and answers, as pydantic models: every value is checked at the edge.

Requests are validated before a route runs; anything outside these bounds is a 422 problem
document, never a 500 further in:

* an **id** (customer, device, transformer, node) is 1–:data:`MAX_ID_LENGTH` characters,
  surrounding whitespace stripped, with no control or invisible formatting character
  (:data:`ID_FORBIDDEN`: C0/C1 controls such as NUL, tab and newline, zero-width characters,
  bidirectional overrides, the BOM) — ids are looked up exactly, so
  ``"SB-00000019\\u0000"`` must not pass for ``SB-00000019``;
* an **event id** is an integer 1–:data:`MAX_EVENT_ID` (``outage_events.id`` is a 32-bit
  ``INTEGER`` on PostgreSQL), a page ``offset`` at most :data:`MAX_OFFSET`;
* a **date-time** is ISO 8601, with an offset or taken as UTC, and must lie in years
  :data:`MIN_YEAR`–:data:`MAX_YEAR` once converted to UTC (``9999-12-31T23:59:59-14:00`` is
  year 10000 in UTC: refused);
* a **reason** is at most 1,000 characters without control characters other than tab, line
  feed and carriage return.

Limits are the library's: at most :data:`~gridtopo.outages.events.MAX_DEVICES` devices per
switching request, :data:`~gridtopo.outages.predict.MAX_CALLS` customers per prediction,
:data:`MAX_PAGE` customers per page.

>>> ImpactRequest(devices=["SB-00000006"], list_customers=True).limit
100
>>> check_id("SB-00000019\\x00")
Traceback (most recent call last):
ValueError: an id must not contain control or invisible formatting characters (U+0000)
>>> check_datetime(dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=14))))
Traceback (most recent call last):
ValueError: date-time outside the years 1900-9999 once converted to UTC
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from gridtopo.outages.events import MAX_DEVICES
from gridtopo.outages.predict import MAX_CALLS

MAX_PAGE = 1000
"""The most customers (or events) one page lists."""
MAX_ID_LENGTH = 64
"""The longest id: the width of every id column (``String(64)``)."""
MAX_EVENT_ID = 2**31 - 1
"""The largest event id: ``outage_events.id`` is ``INTEGER`` (32 bits on PostgreSQL)."""
MAX_OFFSET = 2**31 - 1
"""The largest page offset (SQL ``OFFSET`` and array slices stay far within 64 bits)."""
MIN_YEAR, MAX_YEAR = 1900, 9999
"""The years a date-time may lie in, in UTC."""
MAX_REASON = 1000
"""The longest reason text of an event."""

ID_FORBIDDEN = r"\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff"
"""The characters no id holds, as a regular-expression class body: C0 and C1 controls,
zero-width characters and marks, line and paragraph separators, bidirectional embeddings and
overrides, invisible operators, and the byte-order mark."""
ID_PATTERN = rf"^[^{ID_FORBIDDEN}]*[^{ID_FORBIDDEN}\s][^{ID_FORBIDDEN}]*$"
TEXT_FORBIDDEN = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f"
"""The characters a free text (an event's reason) may not hold: controls but tab, LF, CR."""
TEXT_PATTERN = f"^[^{TEXT_FORBIDDEN}]*$"
_ID_BAD = re.compile(f"[{ID_FORBIDDEN}]")
_TEXT_BAD = re.compile(f"[{TEXT_FORBIDDEN}]")


def json_body(data: Any) -> bytes:
    """``data`` as the UTF-8 JSON the API answers with (Chinese text as is, dates as text).

    >>> json_body({"name": "张**", "at": dt.date(2024, 12, 31)})
    b'{"name": "\\xe5\\xbc\\xa0**", "at": "2024-12-31"}'
    """
    return json.dumps(data, ensure_ascii=False, default=str).encode()


def check_id(value: str) -> str:
    """``value`` without surrounding whitespace if it is a well-formed id (see the module
    docstring); ``ValueError`` saying what is wrong otherwise — the one check of ids, for the
    schemas and the status fast path alike."""
    bad = _ID_BAD.search(value)
    if bad:
        raise ValueError("an id must not contain control or invisible formatting characters "
                         f"(U+{ord(bad.group()):04X})")
    value = value.strip()
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise ValueError(f"an id has 1 to {MAX_ID_LENGTH} characters besides surrounding "
                         f"whitespace, not {len(value)}")
    return value


def check_text(value: str) -> str:
    """``value`` if it holds no control character but tab, LF and CR; ``ValueError``."""
    bad = _TEXT_BAD.search(value)
    if bad:
        raise ValueError(f"text must not contain control characters (U+{ord(bad.group()):04X})")
    return value


def check_datetime(value: dt.datetime) -> dt.datetime:
    """``value`` as aware UTC if it lies in years :data:`MIN_YEAR`–:data:`MAX_YEAR` there
    (naive values are UTC); ``ValueError`` otherwise, overflow included."""
    try:
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None \
            else value.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"date-time outside the years {MIN_YEAR}-{MAX_YEAR} once converted "
                         "to UTC")
    return utc


Id = Annotated[str, AfterValidator(check_id),
               WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH,
                               "pattern": ID_PATTERN})]
"""A customer, device, transformer or node id (surrounding whitespace stripped)."""
EventId = Annotated[int, Field(ge=1, le=MAX_EVENT_ID)]
"""An outage event id."""
Moment = Annotated[dt.datetime, AfterValidator(check_datetime)]
"""A date-time within the supported years, as aware UTC."""
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON), AfterValidator(check_text),
                   WithJsonSchema({"type": "string", "maxLength": MAX_REASON,
                                   "pattern": TEXT_PATTERN})]
"""An event's reason (free text)."""
DeviceList = list[Id]


class SwitchingRequest(BaseModel):
    """Devices to open and normally-open ties to close (转供); at least one device in all."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": [side], "properties": {side: {"minItems": 1}}}
        for side in ("devices", "close")]})

    devices: DeviceList = Field(default_factory=list, max_length=MAX_DEVICES)
    close: DeviceList = Field(default_factory=list, max_length=MAX_DEVICES)

    @model_validator(mode="after")
    def some_device(self) -> SwitchingRequest:
        """Refuse a request that switches nothing, or more than
        :data:`~gridtopo.outages.events.MAX_DEVICES` devices in all (422)."""
        if not self.devices and not self.close:
            raise ValueError("name at least one device to open (devices) or close (close)")
        if len(self.devices) + len(self.close) > MAX_DEVICES:
            raise ValueError(f"{len(self.devices) + len(self.close)} devices in one request; "
                             f"at most {MAX_DEVICES}")
        return self


class ImpactRequest(SwitchingRequest):
    """Devices to open, ties to close, and whether to list the affected customers (a page)."""

    list_customers: bool = False
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class DeclareRequest(SwitchingRequest):
    """A new outage event."""

    kind: Literal["planned", "unplanned"] = "unplanned"
    started_at: Moment | None = None
    expected_end: Moment | None = None
    reason: Reason | None = None


class CloseRequest(BaseModel):
    """When an event ended (default: now)."""

    ended_at: Moment | None = None


class EtrRequest(BaseModel):
    """The new expected end (ETR) of an active event."""

    expected_end: Moment


class NoticePreferenceRequest(BaseModel):
    """A customer's choice: ``opt_out`` true stops every notice to them."""

    opt_out: bool


class SwitchingChangeIn(BaseModel):
    """One switching change done in the field: a device's ``normal_open`` and/or
    ``in_service`` (``normal_open`` on switching devices only), when (default: now) and why."""

    device: Id
    normal_open: bool | None = None
    in_service: bool | None = None
    at: Moment | None = None
    note: Reason | None = None

    @model_validator(mode="after")
    def some_flag(self) -> SwitchingChangeIn:
        """Refuse a change that sets neither flag (422)."""
        if self.normal_open is None and self.in_service is None:
            raise ValueError(f"device {self.device}: give normal_open and/or in_service")
        return self


class SwitchingChanges(BaseModel):
    """``POST /v1/switching``: changes applied all or nothing; ``pin`` keeps them against
    later exports until unpinned."""

    changes: list[SwitchingChangeIn] = Field(min_length=1, max_length=MAX_DEVICES)
    pin: bool = False


class PredictRequest(BaseModel):
    """Customers who called in about no supply."""

    customers: list[Id] = Field(min_length=1, max_length=MAX_CALLS)


# --------------------------------------------------------------------------- answers


class Problem(BaseModel):
    """An error answer: an RFC 7807 problem document (``application/problem+json``)."""

    type: str = Field(description="A URN naming the kind of problem, "
                                  "urn:gridtopo:problem:<kind>.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What is wrong, naming the id, field or limit.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For 422: each refused field as {loc, msg}.")


class ModelInfo(BaseModel):
    """Which model a worker serves (see :class:`~gridtopo.api.served.ServedModel`)."""

    ingest_run: int
    switching_version: int
    generation: int
    loaded_at: str
    worker: int


class Health(BaseModel):
    """``GET /health``."""

    status: Literal["ok"]
    version: str
    backend: str
    model: ModelInfo
    index: dict[str, Any]


class EventBrief(BaseModel):
    """An event as a status answer names it."""

    id: int
    kind: str
    reason: str | None
    started_at: str
    expected_end: str | None


class CustomerStatus(BaseModel):
    """``GET /v1/customers/{id}/status``."""

    customer_id: str
    out: bool | None
    reason: str | None
    events: list[EventBrief]
    upcoming: list[EventBrief]
    expected_restoration: str | None
    transformer_id: str | None
    transfer: dict[str, Any] | None


class OutageEvent(BaseModel):
    """One outage event (``impact`` and ``overlaps`` on the routes that add them)."""

    id: int
    kind: str
    status: str
    reason: str | None
    started_at: str
    expected_end: str | None
    ended_at: str | None
    created_by: str | None
    devices: list[str]
    closed: list[str]
    customers_interrupted: int | None
    customer_minutes: float | None
    notices: dict[str, int] | None = None
    """Notices written with the change (by kind; ``opted_out``, ``no_contact``,
    ``already_sent``, ``withdrawn``), on the routes that change an event."""


class NoticeItem(BaseModel):
    """One notice of the feed; ``recipient`` masked unless the key has ``personal:read``."""

    id: int
    seq: int
    kind: Literal["planned", "reminder", "acknowledged", "etr", "restored"]
    event_id: int
    customer_id: str
    channel: Literal["sms", "voice"]
    recipient: str
    text: str
    etr: str | None
    due_at: str
    released_at: str | None


class NoticeFeed(BaseModel):
    """``GET /v1/notifications``: notices after the cursor, and the cursor to ask with next."""

    items: list[NoticeItem]
    next: int


class OutageList(BaseModel):
    """``GET /v1/outages``: one page of events, newest first."""

    total: int
    limit: int
    offset: int
    events: list[OutageEvent]
