"""Outage event rows as data: the one form that events, the state and the API share.

An event's data is a plain dict (``id``, ``kind``, ``status``, ``reason``, ``started_at``,
``expected_end``, ``ended_at``, ``created_by``, the ``devices`` it opens and the ties it
``closed``, ``customers_interrupted``, ``customer_minutes``), times in UTC.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from gridtopo.clock import as_utc
from gridtopo.db.models import OutageEvent


def event_data(event: OutageEvent) -> dict[str, Any]:
    """An event row (with its devices loaded) as data."""
    return {
        "id": event.id, "kind": event.kind, "status": event.status, "reason": event.reason,
        "started_at": as_utc(event.started_at), "expected_end": as_utc(event.expected_end),
        "ended_at": as_utc(event.ended_at), "created_by": event.created_by,
        "devices": sorted(d.device_id for d in event.devices if d.action == "open"),
        "closed": sorted(d.device_id for d in event.devices if d.action == "close"),
        "customers_interrupted": event.customers_interrupted,
        "customer_minutes": event.customer_minutes,
    }


def active_events(engine: Engine) -> list[dict[str, Any]]:
    """The active (not closed) events as data, oldest first."""
    with Session(engine) as session:
        return active_in(session)


def active_in(session: Session) -> list[dict[str, Any]]:
    """The active events as ``session`` sees them (with its own changes), oldest first."""
    rows = session.execute(
        select(OutageEvent).options(selectinload(OutageEvent.devices))
        .where(OutageEvent.status == "active").order_by(OutageEvent.id)
    ).scalars().all()
    return [event_data(e) for e in rows]
