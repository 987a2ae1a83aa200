"""Outage events: declare, close, list, and "is this customer out?" from the active ones.

An event (``outage_events`` + ``outage_devices``) opens devices from ``started_at`` until it is
closed; planned events (计划停电) may start in the future. Closing keeps the event as history
with ``ended_at``, customers interrupted and customer-minutes — the inputs of SAIFI (Σ customers
interrupted / customers served) and SAIDI (Σ customer-minutes / customers served).

Each event's impact is taken from the normal switching state with only its own devices open;
when events overlap (their de-energized nodes intersect) a customer is out while any covering
event is, and its expected restoration is the latest expected end among them.

:class:`OutageState` holds the started, active events as de-energized positions of the index,
so that a status check is a few array reads.

>>> event = declare(engine, index, ["SB-00000006"], kind="planned", reason="pole swap")
... # doctest: +SKIP
>>> customer_status(index, OutageState.load(engine, index), "0300000000017")["out"]
... # doctest: +SKIP
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from gridtopo.db.models import OutageDevice, OutageEvent
from gridtopo.errors import GridtopoError
from gridtopo.topology.index import QueryIndex, UnknownIdError
from gridtopo.topology.queries import _find, impact

EVENT_KINDS = ("planned", "unplanned")
MAX_DEVICES = 1000
"""Devices one event or impact request may open: a whole substation's feeders at most."""


class EventNotFoundError(UnknownIdError):
    """No outage event with that id."""

    def __init__(self, event_id: int) -> None:
        super().__init__("outage event", [str(event_id)])


class EventStateError(GridtopoError):
    """The event cannot change that way (e.g. closing a closed event, ending before start)."""


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC datetime (SQLite returns naive UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def now() -> dt.datetime:
    """The current time, aware UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _event_dict(event: OutageEvent) -> dict[str, Any]:
    return {
        "id": event.id, "kind": event.kind, "status": event.status, "reason": event.reason,
        "started_at": utc(event.started_at), "expected_end": utc(event.expected_end),
        "ended_at": utc(event.ended_at), "created_by": event.created_by,
        "devices": sorted(d.device_id for d in event.devices),
        "customers_interrupted": event.customers_interrupted,
        "customer_minutes": event.customer_minutes,
    }


def check_devices_list(devices: list[str]) -> list[str]:
    """``devices`` without repeats; :class:`EventStateError` when empty or too many."""
    devices = list(dict.fromkeys(d.strip() for d in devices if d.strip()))
    if not devices:
        raise EventStateError("no device given: name at least one device id to open")
    if len(devices) > MAX_DEVICES:
        raise EventStateError(f"{len(devices)} devices in one request; at most {MAX_DEVICES}")
    return devices


def declare(
    engine: Engine,
    index: QueryIndex,
    devices: list[str],
    *,
    kind: str = "unplanned",
    started_at: dt.datetime | None = None,
    expected_end: dt.datetime | None = None,
    reason: str | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Record an outage opening ``devices``; return it with its impact and overlapping events.

    >>> declare(engine, index, ["SB-00000006"], reason="fault")["customers_interrupted"]
    ... # doctest: +SKIP
    1136
    """
    if kind not in EVENT_KINDS:
        raise EventStateError(f"unknown outage kind {kind!r}: use planned or unplanned")
    devices = check_devices_list(devices)
    result = impact(index, devices)
    start = utc(started_at) or now()
    end = utc(expected_end)
    if end is not None and end <= start:
        raise EventStateError(f"expected end {end.isoformat()} is not after the start "
                              f"{start.isoformat()}")
    with Session(engine) as session, session.begin():
        event = OutageEvent(kind=kind, status="active", reason=reason, started_at=start,
                            expected_end=end, created_by=created_by,
                            customers_interrupted=result.customers,
                            devices=[OutageDevice(device_id=d) for d in devices])
        session.add(event)
        session.flush()
        data = _event_dict(event)
    state = OutageState.load(engine, index)
    data["impact"] = result.to_dict()
    data["overlaps"] = state.overlapping(data["id"])
    return data


def close(engine: Engine, event_id: int, *, ended_at: dt.datetime | None = None
          ) -> dict[str, Any]:
    """Close an active event at ``ended_at`` (default now), computing its customer-minutes.

    >>> close(engine, 1)["customer_minutes"]  # doctest: +SKIP
    68160.0
    """
    with Session(engine) as session, session.begin():
        event = session.get(OutageEvent, event_id, options=[selectinload(OutageEvent.devices)])
        if event is None:
            raise EventNotFoundError(event_id)
        if event.status == "closed":
            raise EventStateError(f"outage event {event_id} is already closed "
                                  f"(ended {utc(event.ended_at)})")
        end = utc(ended_at) or now()
        start = utc(event.started_at)
        assert start is not None
        if end < start:
            raise EventStateError(f"end {end.isoformat()} is before the start of event "
                                  f"{event_id} ({start.isoformat()})")
        event.status = "closed"
        event.ended_at = end
        minutes = (end - start).total_seconds() / 60
        event.customer_minutes = round((event.customers_interrupted or 0) * minutes, 3)
        session.flush()
        return _event_dict(event)


def get_event(engine: Engine, event_id: int) -> dict[str, Any]:
    """One event as data; :class:`EventNotFoundError` when there is none with that id."""
    with Session(engine) as session:
        event = session.get(OutageEvent, event_id, options=[selectinload(OutageEvent.devices)])
        if event is None:
            raise EventNotFoundError(event_id)
        return _event_dict(event)


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
                "events": [_event_dict(e) for e in rows]}


@dataclass
class ActiveEvent:
    """An active event and the index positions it de-energizes."""

    data: dict[str, Any]
    positions: np.ndarray


@dataclass
class OutageState:
    """The active events over the index: who is out now, and because of which events.

    ``out`` counts, per position, the started events that de-energize it (a position off the
    normal-state forest is out without an event); ``soon`` the events not started yet.
    """

    events: list[ActiveEvent]
    out: np.ndarray
    soon: np.ndarray
    at: dt.datetime
    by_position: dict[int, list[int]]

    @classmethod
    def from_events(cls, events: list[ActiveEvent], positions: int, at: dt.datetime,
                    combined: np.ndarray | None = None) -> OutageState:
        """The state of ``events`` over an index of ``positions`` positions at time ``at``.

        ``combined`` are the positions dead with every started event's devices open at once;
        in a meshed network it can exceed the union of the events' own positions (two
        openings, each harmless alone, that cut a loop).
        """
        out = np.zeros(positions, dtype=np.int32)
        soon = np.zeros(positions, dtype=np.int32)
        by_position: dict[int, list[int]] = {}
        for i, event in enumerate(events):
            (out if event.data["started_at"] <= at else soon)[event.positions] += 1
            for p in event.positions.tolist():
                by_position.setdefault(p, []).append(i)
        if combined is not None:
            out[combined] = np.maximum(out[combined], 1)
        return cls(events, out, soon, at, by_position)

    @classmethod
    def load(cls, engine: Engine, index: QueryIndex, *, at: dt.datetime | None = None
             ) -> OutageState:
        """Read the active events; those started by ``at`` (default now) count as out."""
        moment = utc(at) or now()
        with Session(engine) as session:
            rows = session.execute(
                select(OutageEvent).options(selectinload(OutageEvent.devices))
                .where(OutageEvent.status == "active").order_by(OutageEvent.id)
            ).scalars().all()
            data = [_event_dict(e) for e in rows]
        events = []
        started: list[str] = []
        for item in data:
            known = [d for d in item["devices"] if _find(index.edge_ids, d) >= 0]
            events.append(ActiveEvent(item, index.affected_positions(index.edge_indices(known))))
            if item["started_at"] <= moment:
                started += known
        combined = index.affected_positions(index.edge_indices(started)) if started else None
        return cls.from_events(events, len(index.order), moment, combined)

    def covering(self, position: int) -> list[dict[str, Any]]:
        """Active events (started or not) whose outage reaches ``position``."""
        return [self.events[i].data for i in self.by_position.get(position, ())]

    def overlapping(self, event_id: int) -> list[int]:
        """Ids of the other active events whose de-energized nodes meet those of ``event_id``."""
        mine = next((e for e in self.events if e.data["id"] == event_id), None)
        if mine is None:
            return []
        return [e.data["id"] for e in self.events if e is not mine
                and np.intersect1d(e.positions, mine.positions, assume_unique=True).size]


def customer_status(index: QueryIndex, state: OutageState, customer_id: str) -> dict[str, Any]:
    """Is ``customer_id`` out of supply now, why, and until when?

    ``out`` is true when a started event de-energizes its transformer, or when the transformer
    is dead in the normal state (``reason`` says which); ``events`` are the started events
    responsible, ``upcoming`` the planned ones not started yet, ``expected_restoration`` the
    latest expected end of the responsible events (None when unknown).

    >>> customer_status(index, state, "0300000000017")  # doctest: +SKIP
    {'customer_id': '0300000000017', 'out': False, ...}
    """
    customer = _find(index.customer_ids, customer_id)
    if customer < 0:
        raise UnknownIdError("customer", [customer_id])
    result: dict[str, Any] = {"customer_id": customer_id, "out": False, "reason": None,
                              "events": [], "upcoming": [], "expected_restoration": None,
                              "transformer_id": None}
    tr = int(index.customer_transformer[customer])
    if not index.customer_active[customer]:
        result["reason"] = "account closed"
        return result
    if tr < 0:
        result.update(out=None, reason="no reconciled transformer: supply unknown")
        return result
    result["transformer_id"] = index.transformer_ids[tr].decode()
    position = int(index.pos[int(index.transformer_node[tr])])
    if position >= index.n_energized:
        result.update(out=True, reason="not energized in the normal switching state")
    if state.out[position] or state.soon[position]:
        for event in state.covering(position):
            brief = {k: event[k] for k in ("id", "kind", "reason", "started_at",
                                           "expected_end")}
            key = "events" if event["started_at"] <= state.at else "upcoming"
            result[key].append(brief)
    if state.out[position] and not result["events"]:  # only the events together cut it
        result["events"] = [{k: e.data[k] for k in ("id", "kind", "reason", "started_at",
                                                    "expected_end")}
                            for e in state.events if e.data["started_at"] <= state.at]
        result["reason"] = "outage events together (no single one cuts it)"
    if result["events"]:
        ends = [e["expected_end"] for e in result["events"]]
        result["out"] = True
        result["reason"] = result["reason"] or "outage event"
        result["expected_restoration"] = None if None in ends else max(ends)
    return result
