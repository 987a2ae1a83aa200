"""AMI meter events and device telemetry for prediction: last gasps, power back, closed devices.

An item is ``{"meter_id", "kind": "power_off" | "power_on", "at"}`` — a meter's last gasp or
its return — or ``{"device_id", "kind": "closed", "at"}``, a device telemetry reports closed
(energized: prediction skips it). Each is stored once: the same source, kind and time again
is a ``duplicate``; a meter no customer holds is ``unknown_meter`` and a device the model
lacks ``unknown_device`` — stored all the same (nothing is lost), but not used. The answer
counts every item once: ``stored + duplicates == received``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from gridtopo.clock import as_utc, now_seconds
from gridtopo.db.models import METER_EVENT_KINDS, Customer, MeterEvent
from gridtopo.errors import InputError
from gridtopo.topology.index import QueryIndex
from gridtopo.topology.queries import _find

MAX_EVENTS = 5000
"""Events one request or file chunk holds at most."""


@dataclass(frozen=True)
class MeterEventIn:
    """One event as received: ``source_id`` a meter id (power_off/power_on) or a device id
    (closed)."""

    source_id: str
    kind: str
    at: dt.datetime


def event_from_dict(data: dict[str, Any], where: str) -> MeterEventIn:
    """A :class:`MeterEventIn` from a JSON object; :class:`InputError` naming ``where``."""
    kind = str(data.get("kind") or "")
    if kind not in METER_EVENT_KINDS:
        raise InputError(f"{where}: kind {kind!r} is not one of {', '.join(METER_EVENT_KINDS)}")
    field = "device_id" if kind == "closed" else "meter_id"
    source = str(data.get(field) or "").strip()
    if not source or len(source) > 64:
        raise InputError(f"{where}: {field} (1-64 characters) is required for kind {kind}")
    at = data.get("at")
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at)
        except ValueError as err:
            raise InputError(f"{where}: at {at!r} is not an ISO 8601 date-time") from err
    if not isinstance(at, dt.datetime):
        raise InputError(f"{where}: at (an ISO 8601 date-time) is required")
    return MeterEventIn(source, kind, as_utc(at))


def record_events(engine: Engine, index: QueryIndex, events: list[MeterEventIn]
                  ) -> dict[str, Any]:
    """Store ``events`` (see the module); ``{"received", "stored", "duplicates",
    "unknown_meters", "unknown_devices"}`` with the ids left unused."""
    if len(events) > MAX_EVENTS:
        raise InputError(f"{len(events):,} events in one batch; at most {MAX_EVENTS:,}")
    unique = list(dict.fromkeys((e.source_id, e.kind, e.at) for e in events))
    meters = sorted({s for s, k, _ in unique if k != "closed"})
    owners: dict[str | None, tuple[str, str | None]] = {}
    with engine.connect() as conn:
        for start in range(0, len(meters), 500):
            for meter, owner, area in conn.execute(
                    select(Customer.meter_id, Customer.customer_id, Customer.transformer_id)
                    .where(Customer.meter_id.in_(meters[start:start + 500]))):
                owners.setdefault(meter, (owner, area))
        seen = set()
        for start in range(0, len(unique), 300):
            part = unique[start:start + 300]
            seen |= {(s, k, as_utc(a)) for s, k, a in conn.execute(
                select(MeterEvent.source_id, MeterEvent.kind, MeterEvent.at).where(
                    tuple_(MeterEvent.source_id, MeterEvent.kind).in_(
                        [(s, k) for s, k, _ in part]),
                    MeterEvent.at.in_([a for _, _, a in part])))}
    rows: list[dict[str, Any]] = []
    unknown_meters: list[str] = []
    unknown_devices: list[str] = []
    received = now_seconds()
    for source, kind, at in unique:
        if (source, kind, at) in seen:
            continue
        customer = transformer = feeder = None
        if kind == "closed":
            edge = _find(index.edge_ids, source)
            if edge < 0:
                unknown_devices.append(source)
            else:
                f = int(index.edge_feeder[edge])
                feeder = index.feeder_ids[f].decode() if f >= 0 else None
        elif source in owners:
            customer, transformer = owners[source]
            c = _find(index.customer_ids, customer)
            position = index.customer_position(c) if c >= 0 else -1
            feeder = index.feeder_at(position) if 0 <= position < index.n_energized else None
        else:
            unknown_meters.append(source)
        rows.append({"source_id": source, "kind": kind, "at": at, "received_at": received,
                     "customer_id": customer, "transformer_id": transformer,
                     "feeder_id": feeder, "processed": feeder is None, "prediction_id": None})
    stored = _insert(engine, rows)
    return {"received": len(events), "stored": stored,
            "duplicates": len(events) - stored, "unknown_meters": unknown_meters,
            "unknown_devices": unknown_devices}


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``; on a race with another writer, one by one skipping the duplicates."""
    if not rows:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(insert(MeterEvent), rows)
        return len(rows)
    except IntegrityError:
        stored = 0
        for row in rows:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(MeterEvent), [row])
                stored += 1
            except IntegrityError:
                continue
        return stored


def read_events_file(path: Path) -> list[MeterEventIn]:
    """The events of a JSON-lines file (one object per line); :class:`InputError` naming the
    file, line and field of each bad line (up to ten), before anything is stored."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the events file: {err}") from err
    events, errors = [], []
    for line, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            if not isinstance(item, dict):
                raise InputError(f"{path}:{line}: not a JSON object")
            events.append(event_from_dict(item, f"{path}:{line}"))
        except json.JSONDecodeError as err:
            errors.append(f"{path}:{line}: not a JSON object ({err.msg})")
        except InputError as err:
            errors.append(str(err))
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise InputError("; ".join(errors[:10]) + more + ": nothing was stored")
    return events


def record_events_file(engine: Engine, index: QueryIndex, events: list[MeterEventIn]
                       ) -> dict[str, Any]:
    """:func:`record_events` over any number of events, :data:`MAX_EVENTS` at a time; the
    counts and unknown ids summed."""
    total: dict[str, Any] = {"received": 0, "stored": 0, "duplicates": 0,
                             "unknown_meters": [], "unknown_devices": []}
    for start in range(0, len(events), MAX_EVENTS):
        part = record_events(engine, index, events[start:start + MAX_EVENTS])
        for name, value in part.items():
            total[name] += value
    return total
