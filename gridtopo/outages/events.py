"""Outage events: declare, close and list them, in the model's database.

An event (``outage_events`` + ``outage_devices``) switches devices from ``started_at`` until it
is closed: it **opens** devices (the outage) and may **close** normally-open ties (a switching
plan's load transfer, 转供) so that part of the cut-off section is fed from a neighbouring
feeder. Planned events (计划停电) may start in the future. Closing keeps the event as history
with ``ended_at``, customers interrupted and customer-minutes — the inputs of SAIFI (Σ
customers interrupted / customers served) and SAIDI (Σ customer-minutes / customers served).

An event's impact is what is de-energized under the normal switching state plus its own
openings and closings, compared with the normal state: customers a closed tie picks up are
not out. Only normally-open, in-service switching devices can be closed; naming any other
device is an error (:class:`~gridtopo.topology.queries.SwitchingError`), not a silent no-op.
How active events combine, and who is out now, is :mod:`gridtopo.outages.state`.

>>> switching_lists([" SB-1", "SB-1", "SB-2"], close=["SB-9"])
(['SB-1', 'SB-2'], ['SB-9'])

A planned outage below switches SB-00000009 and SB-00000014 of feeder XL-000001, with the tie
SB-00000080 closed so that XL-000002 keeps part of the section in supply, and closed after two
hours:

>>> from gridtopo.topology.index import load_index
>>> index = load_index(engine)
>>> start = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.timezone.utc)
>>> event = declare(engine, index, ["SB-00000009", "SB-00000014"], close=["SB-00000080"],
...                 kind="planned", reason="pole swap", started_at=start)
>>> event["id"], event["customers_interrupted"], event["impact"]["picked_up"][0]["customers"]
(1, 950, 304)
>>> close(engine, event["id"], ended_at=start + dt.timedelta(hours=2))["customer_minutes"]
114000.0
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from gridtopo.clock import as_utc, now_seconds
from gridtopo.db.models import OutageDevice, OutageEvent
from gridtopo.errors import GridtopoError
from gridtopo.outages import notices
from gridtopo.outages.notices import NoticeRules
from gridtopo.outages.records import active_in, event_data
from gridtopo.outages.state import OutageState
from gridtopo.topology.index import QueryIndex, UnknownIdError, load_index
from gridtopo.topology.queries import impact

EVENT_KINDS = ("planned", "unplanned")
MAX_DEVICES = 1000
"""Devices one event or impact request may open and close: a whole substation's feeders at
most."""


class EventNotFoundError(UnknownIdError):
    """No outage event with that id."""

    def __init__(self, event_id: int) -> None:
        super().__init__("outage event", [str(event_id)])


class EventStateError(GridtopoError):
    """The event cannot change that way (e.g. closing a closed event, ending before start)."""

    http_status = 409


def switching_lists(devices: Iterable[str], close: Iterable[str] = ()
                    ) -> tuple[list[str], list[str]]:
    """The devices to open and to close, stripped and without repeats; :class:`EventStateError`
    when there are none or too many together. A closing-only request is allowed: a load
    transfer declared after the outage it relieves."""
    opened = list(dict.fromkeys(d.strip() for d in devices if d.strip()))
    closed = list(dict.fromkeys(d.strip() for d in close if d.strip()))
    if not opened and not closed:
        raise EventStateError("no device given: name at least one device id to open or close")
    if len(opened) + len(closed) > MAX_DEVICES:
        raise EventStateError(f"{len(opened) + len(closed)} devices in one request; at most "
                              f"{MAX_DEVICES}")
    return opened, closed


def declare(
    engine: Engine,
    index: QueryIndex,
    devices: Sequence[str],
    *,
    close: Sequence[str] = (),
    kind: str = "unplanned",
    started_at: dt.datetime | None = None,
    expected_end: dt.datetime | None = None,
    reason: str | None = None,
    created_by: str | None = None,
    notice_rules: NoticeRules | None = None,
) -> dict[str, Any]:
    """Record an outage opening ``devices`` and closing the ties ``close``; return it with its
    impact, the ids of the active events it overlaps (see :meth:`OutageState.overlapping`)
    and the counts of the customer notices written with it (:mod:`gridtopo.outages.notices`,
    in the same transaction).

    >>> from gridtopo.topology.index import load_index
    >>> index = load_index(engine)
    >>> fault = declare(engine, index, ["SB-00000009"], reason="fault")
    >>> fault["id"], fault["customers_interrupted"], fault["overlaps"]
    (1, 1254, [])
    >>> declare(engine, index, ["SB-00000014"], reason="pole swap")["overlaps"]
    [1]
    """
    if kind not in EVENT_KINDS:
        raise EventStateError(f"unknown outage kind {kind!r}: use planned or unplanned")
    opened, closed = switching_lists(devices, close)
    result = impact(index, opened, close=closed)
    start = as_utc(started_at) or now_seconds()
    end = as_utc(expected_end)
    if end is not None and end <= start:
        raise EventStateError(f"expected end {end.isoformat()} is not after the start "
                              f"{start.isoformat()}")
    with Session(engine) as session, session.begin():
        event = OutageEvent(kind=kind, status="active", reason=reason, started_at=start,
                            expected_end=end, created_by=created_by,
                            customers_interrupted=result.customers,
                            devices=[*(OutageDevice(device_id=d, action="open") for d in opened),
                                     *(OutageDevice(device_id=d, action="close")
                                       for d in closed)])
        session.add(event)
        session.flush()
        data = event_data(event)
        others = [e for e in active_in(session) if e["id"] != data["id"]]
        counts = notices.on_declared(session.connection(), index, data, others,
                                     notice_rules or NoticeRules(), now_seconds())
    state = OutageState.load(engine, index)
    data["notices"] = counts
    data["impact"] = result.to_dict()
    data["overlaps"] = state.overlapping(index, data["id"])
    return data


def close(engine: Engine, event_id: int, *, ended_at: dt.datetime | None = None,
          index: QueryIndex | None = None, notice_rules: NoticeRules | None = None
          ) -> dict[str, Any]:
    """Close an active event at ``ended_at`` (default now), computing its customer-minutes,
    and tell the customers it alone held out that supply is back (``restored`` notices, in
    the same transaction, decided on ``index`` — the database's own when not given).
    Closing a planned event before its start calls it off: it ends at its start, having
    interrupted nobody, and its notices not yet sent are withdrawn.

    >>> from gridtopo.topology.index import load_index
    >>> start = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.timezone.utc)
    >>> event = declare(engine, load_index(engine), ["SB-00000009"], started_at=start)
    >>> done = close(engine, event["id"], ended_at=start + dt.timedelta(minutes=90))
    >>> done["status"], done["customers_interrupted"], done["customer_minutes"]
    ('closed', 1254, 112860.0)
    """
    with Session(engine) as session, session.begin():
        event = _active(session, event_id)
        end = as_utc(ended_at) or now_seconds()
        start = as_utc(event.started_at)
        assert start is not None
        if start > now_seconds() and end <= start:  # called off before it began
            end = start
            event.customers_interrupted = 0
        elif end < start:
            raise EventStateError(f"end {end.isoformat()} is before the start of event "
                                  f"{event_id} ({start.isoformat()})")
        data = event_data(event)
        event.status = "closed"
        event.ended_at = end
        minutes = (end - start).total_seconds() / 60
        event.customer_minutes = round((event.customers_interrupted or 0) * minutes, 3)
        session.flush()
        others = [e for e in active_in(session) if e["id"] != event_id]
        counts = notices.on_closed(session.connection(), index or load_index(engine), data,
                                   others, notice_rules or NoticeRules(), now_seconds())
        return {**event_data(event), "notices": counts}


def set_etr(engine: Engine, index: QueryIndex, event_id: int, expected_end: dt.datetime, *,
            notice_rules: NoticeRules | None = None) -> dict[str, Any]:
    """Set or change the expected end (ETR) of an active event; the customers whose expected
    restoration moves by more than the rules' threshold are told (``etr`` notices, in the same
    transaction).

    >>> from gridtopo.topology.index import load_index
    >>> index = load_index(engine)
    >>> start = now_seconds()
    >>> fault = declare(engine, index, ["SB-00000009"], started_at=start)
    >>> set_etr(engine, index, fault["id"], start + dt.timedelta(hours=3))["notices"]["etr"]
    1254
    """
    end = as_utc(expected_end)
    with Session(engine) as session, session.begin():
        event = _active(session, event_id)
        start = as_utc(event.started_at)
        if end <= start:
            raise EventStateError(f"expected end {end.isoformat()} is not after the start "
                                  f"{start.isoformat()}")
        event.expected_end = end
        session.flush()
        data = event_data(event)
        others = [e for e in active_in(session) if e["id"] != event_id]
        counts = notices.on_etr(session.connection(), index, data, others,
                                notice_rules or NoticeRules(), now_seconds())
        return {**data, "notices": counts}


def _active(session: Session, event_id: int) -> OutageEvent:
    """The active event ``event_id`` with its devices; :class:`EventNotFoundError` or
    :class:`EventStateError` (closed already) otherwise."""
    event = session.get(OutageEvent, event_id, options=[selectinload(OutageEvent.devices)])
    if event is None:
        raise EventNotFoundError(event_id)
    if event.status == "closed":
        raise EventStateError(f"outage event {event_id} is already closed "
                              f"(ended {as_utc(event.ended_at)})")
    return event


def get_event(engine: Engine, event_id: int) -> dict[str, Any]:
    """One event as data; :class:`EventNotFoundError` when there is none with that id."""
    with Session(engine) as session:
        event = session.get(OutageEvent, event_id, options=[selectinload(OutageEvent.devices)])
        if event is None:
            raise EventNotFoundError(event_id)
        return event_data(event)


def list_events(
    engine: Engine, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """Events newest first, one page: ``{"total", "limit", "offset", "events"}``."""
    query = select(OutageEvent).options(selectinload(OutageEvent.devices))
    count = select(func.count()).select_from(OutageEvent)
    if status is not None:
        query = query.where(OutageEvent.status == status)
        count = count.where(OutageEvent.status == status)
    with Session(engine) as session:
        total = session.execute(count).scalar_one()
        rows = session.execute(
            query.order_by(OutageEvent.id.desc()).limit(limit).offset(offset)).scalars().all()
        return {"total": total, "limit": limit, "offset": offset,
                "events": [event_data(e) for e in rows]}
