"""The model as it stood after an ingest run: snapshots, ``--as-of`` and versioned tables.

Every ingest that changes the model records a snapshot (``snapshots``: run id, time, counts)
and archives the former version of each changed or removed row in ``<table>_history``
(:mod:`gridtopo.db.versioning`). The model as of run R is, per versioned table::

    SELECT … FROM t         WHERE valid_from_run <= R
    UNION ALL
    SELECT … FROM t_history WHERE valid_from_run <= R AND valid_to_run > R

:func:`versioned` builds that selectable with the live table's column names, so every export
(CSV, GeoPackage, CIM, …) reads the past exactly as it reads the present; ``run=None`` is the
current model (the live table itself, with its indexes). :func:`resolve_as_of` turns what a
user types — a run id or a date — into that run.

>>> from sqlalchemy import func, select
>>> with engine.connect() as conn:
...     run = resolve_as_of(conn, "2099-12-31")     # the last snapshot on or before that day
...     edges = conn.execute(select(func.count()).select_from(versioned("edges", run))).scalar()
>>> run, edges
(1, 80)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, FromClause, and_, select
from sqlalchemy.sql.selectable import Subquery

from gridtopo.clock import as_utc, parse_iso
from gridtopo.db.models import HISTORY_TABLES, VERSIONED_KEYS, Base, Snapshot
from gridtopo.errors import GridtopoError


class SnapshotNotFoundError(GridtopoError):
    """``--as-of`` names no recorded state of the model (before the first snapshot, unknown)."""

    http_status = 404


@dataclass(frozen=True)
class SnapshotInfo:
    """One recorded state: the run that made it, when, and what it added/changed/removed."""

    run_id: int
    created_at: dt.datetime
    counts: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"run_id": self.run_id, "created_at": self.created_at.isoformat(),
                "counts": self.counts}


def list_snapshots(conn: Connection | Engine) -> list[SnapshotInfo]:
    """Every snapshot, oldest first."""
    query = select(Snapshot.run_id, Snapshot.created_at, Snapshot.counts).order_by(
        Snapshot.run_id
    )
    if isinstance(conn, Engine):
        with conn.connect() as connection:
            rows = connection.execute(query).all()
    else:
        rows = conn.execute(query).all()
    return [SnapshotInfo(int(r.run_id), as_utc(r.created_at), dict(r.counts or {})) for r in rows]


def _parse_moment(text: str) -> dt.datetime:
    """A date means the end of that day (UTC); a date-time without zone is UTC."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        return parse_iso(text)
    except ValueError as err:
        raise SnapshotNotFoundError(
            f"--as-of {text!r} is neither a run id nor a date (YYYY-MM-DD[THH:MM[:SS]])"
        ) from err


def resolve_as_of(conn: Connection, as_of: str | int | None) -> int | None:
    """The run id ``as_of`` stands for, or None for the current model.

    A number is a run id: the model as it stood after that run (it need not have changed the
    model, but it must not precede the first snapshot). A date (``2024-12-31``, the whole day)
    or date-time (``2024-12-31T18:00``, UTC unless it names a zone) is the last snapshot at or
    before it.
    """
    if as_of is None:
        return None
    snapshots = list_snapshots(conn)
    if not snapshots:
        raise SnapshotNotFoundError("the database has no snapshot yet: run gridtopo ingest first")
    first = snapshots[0]
    text = str(as_of).strip()
    if text.isdigit():
        run = int(text)
        if run < first.run_id:
            raise SnapshotNotFoundError(
                f"--as-of run {run} precedes the first snapshot (run {first.run_id})")
        return run
    moment = _parse_moment(text)
    earlier = [s for s in snapshots if s.created_at <= moment]
    if not earlier:
        raise SnapshotNotFoundError(
            f"--as-of {text} precedes the first snapshot (run {first.run_id} at "
            f"{first.created_at:%Y-%m-%d %H:%M:%S} UTC)")
    return earlier[-1].run_id


def versioned(name: str, run: int | None) -> FromClause:
    """Table ``name`` as of ``run`` (None: now), with the live table's columns.

    Unversioned tables (``customer_personal``, ``nodes``) are always current. Columns that
    only the live table has (``links.id``) are absent from a past version.
    """
    table = Base.metadata.tables[name]
    if run is None or name not in VERSIONED_KEYS:
        return table
    history = HISTORY_TABLES[name]
    columns = [c.name for c in history.columns if c.name != "valid_to_run"]
    current = select(*(table.c[c] for c in columns)).where(table.c.valid_from_run <= run)
    past = select(*(history.c[c] for c in columns)).where(
        and_(history.c.valid_from_run <= run, history.c.valid_to_run > run)
    )
    subquery: Subquery = current.union_all(past).subquery(f"{name}_asof")
    return subquery
