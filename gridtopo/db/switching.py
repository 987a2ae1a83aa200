"""Live switching state in the store: record field operations, and let the next export decide.

:func:`record_switching` applies switching changes (:mod:`gridtopo.ingest.switching`) to the
model in one transaction, all or nothing: every device must be an edge of the model, and
``normal_open`` only applies to switching devices (a line or cable takes ``in_service``
only). The changes become one ingest run of their own (source ``switching:<origin>``, user =
who recorded them) with a snapshot, the former edge rows go to ``edges_history``, and each
change is a ``switching_changes`` row with who, when (``at``: in the field; ``recorded_at``)
and why (``note``). Several changes of one device apply in the order of ``at``: the latest
wins, and a change whose every flag a later one sets is ``replaced``.

**Which wins when the next export disagrees** (:func:`switching_overrides`, called by the
ingest's load): the later timestamp. The export's time is when its edges file was written
(the newest modification time of the run's edges files; the run's start when unknown). A
change done in the field (``at``) after that stays in the model — the export predates it —
and stays ``active``; a change at or before it yields to the export: ``confirmed`` when the
export shows the same state, ``overridden`` when it does not (``ended_run`` names the run).
A change of a device that the export no longer holds is ``overridden``. A **pinned** change
(``--pin``, :func:`set_pinned`) stays in the model against every export until unpinned: for
a GIS that lags the field by more than a day.

``switching_version`` (:func:`model_stamp`) is the id of the newest change recorded, so the
query index and every API worker say which switching state they answer from.

>>> from gridtopo.ingest.switching import SwitchingRow
>>> done = record_switching(engine, [SwitchingRow("SB-00000009", None, False, None, "doctest",
...                                                2)], origin="doctest", by="steward")
>>> done.edges, done.version > 0
({'SB-00000009': (False, False)}, True)
>>> [c["status"] for c in list_switching(engine, limit=1)]
['active']
>>> undo = record_switching(engine, [SwitchingRow("SB-00000009", None, True, None, "back", 2)],
...                         origin="doctest", by="steward")
>>> [c["status"] for c in list_switching(engine, limit=2)]
['active', 'replaced']
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, func, insert, select, text, update

from gridtopo import __version__
from gridtopo.clock import as_utc, utcnow
from gridtopo.db import versioning
from gridtopo.db.models import (
    SWITCHING_KINDS,
    Edge,
    IngestFile,
    IngestRun,
    Snapshot,
    SwitchingChange,
)
from gridtopo.errors import InputError
from gridtopo.ingest.switching import SwitchingInputError, SwitchingRow

FLAGS = ("normal_open", "in_service")
LOCK_KEY = 0x67747377
"""PostgreSQL advisory lock taken by a switching change and by an ingest's load, so that the
load never decides on switching changes that are committed behind its back."""


@dataclass(frozen=True)
class ModelStamp:
    """What the query index is stamped with: the newest succeeded run, the newest snapshot
    (model load) and the newest switching change (0 where none)."""

    run: int
    load: int
    switching_version: int


def model_stamp(conn: Connection) -> ModelStamp:
    """The :class:`ModelStamp` of the database, in one query."""
    row = conn.execute(select(
        select(func.max(IngestRun.id)).where(IngestRun.status == "succeeded")
        .scalar_subquery(),
        select(func.max(Snapshot.id)).scalar_subquery(),
        select(func.max(SwitchingChange.id)).scalar_subquery())).one()
    return ModelStamp(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


@dataclass(frozen=True)
class SwitchingApplied:
    """What :func:`record_switching` did: the run it recorded, the changes' ids, the new
    ``(normal_open, in_service)`` of every edge whose state changed, and the stamps of the
    model before and after."""

    run_id: int
    change_ids: list[int]
    edges: dict[str, tuple[bool, bool]]
    before: ModelStamp
    after: ModelStamp
    replaced: list[int] = field(default_factory=list)

    @property
    def version(self) -> int:
        """The switching version after the change."""
        return self.after.switching_version


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _stored_edges(conn: Connection, devices: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(devices), 500):
        rows = conn.execute(select(Edge.edge_id, Edge.kind, Edge.feeder_id, Edge.from_node,
                                   Edge.to_node, Edge.normal_open, Edge.in_service,
                                   Edge.length_m, Edge.row_hash)
                            .where(Edge.edge_id.in_(devices[start:start + 500]))).all()
        found.update({r.edge_id: dict(r._mapping) for r in rows})
    return found


def check_rows(rows: Sequence[SwitchingRow], stored: dict[str, dict[str, Any]], origin: str,
               item: str = "line") -> None:
    """:class:`SwitchingInputError` naming every change of an unknown device or setting
    ``normal_open`` on a device that is not a switching device."""
    problems = []
    for row in rows:
        edge = stored.get(row.device)
        if edge is None:
            problems.append((row.line, row.device, "unknown device (no edge of the model)"))
        elif row.normal_open is not None and edge["kind"] not in SWITCHING_KINDS:
            problems.append((row.line, row.device, f"a {edge['kind']} is not a switching "
                             "device: only in_service applies to it"))
    if problems:
        raise SwitchingInputError(origin, problems, item)


def _start_switching_run(conn: Connection, origin: str, by: str | None, count: int) -> int:
    now = utcnow()
    return int(conn.execute(insert(IngestRun).values(
        source=f"switching:{origin}", gridtopo_version=__version__,
        user_name=by or getpass.getuser(), host=socket.gethostname(), status="succeeded",
        started_at=now, finished_at=now, summary={"status": "switching", "changes": count},
    ).returning(IngestRun.id)).scalar_one())


def _settle(changes: list[Any], state: dict[str, bool]) -> tuple[dict[str, bool], list[int]]:
    """``state`` after ``changes`` (of one device, in ``at`` order), and the ids of those
    whose every flag a later one sets."""
    state = dict(state)
    replaced = []
    for i, change in enumerate(changes):
        for flag in FLAGS:
            if getattr(change, flag) is not None:
                state[flag] = bool(getattr(change, flag))
        later = {f for c in changes[i + 1:] for f in FLAGS if getattr(c, f) is not None}
        if {f for f in FLAGS if getattr(change, f) is not None} <= later:
            replaced.append(change.id)
    return state, replaced


def record_switching(engine: Engine, rows: Sequence[SwitchingRow], *, origin: str,
                     by: str | None = None, pin: bool = False, item: str = "line"
                     ) -> SwitchingApplied:
    """Check ``rows`` against the model and apply them, all or nothing (see the module)."""
    if not rows:
        raise InputError(f"{origin}: no switching change given")
    devices = sorted({r.device for r in rows})
    with engine.begin() as conn:
        _lock(conn)
        before = model_stamp(conn)
        stored = _stored_edges(conn, devices)
        check_rows(rows, stored, origin, item)
        run_id = _start_switching_run(conn, origin, by, len(rows))
        now = utcnow()
        ids = [int(conn.execute(insert(SwitchingChange).values(
            run_id=run_id, device_id=r.device, normal_open=r.normal_open,
            in_service=r.in_service, at=r.at or now, note=r.note, recorded_by=by,
            recorded_at=now, origin=origin, origin_line=r.line, pinned=pin, status="active",
        ).returning(SwitchingChange.id)).scalar_one()) for r in rows]
        active = conn.execute(select(SwitchingChange).where(
            SwitchingChange.status == "active", SwitchingChange.device_id.in_(devices))
            .order_by(SwitchingChange.device_id, SwitchingChange.at, SwitchingChange.id)
        ).all()
        edges: dict[str, tuple[bool, bool]] = {}
        replaced: list[int] = []
        for device in devices:
            edge = stored[device]
            old = {f: bool(edge[f]) if edge[f] is not None else f == "in_service"
                   for f in FLAGS}
            new, gone = _settle([c for c in active if c.device_id == device], old)
            replaced += gone
            if new != old:
                edges[device] = (new["normal_open"], new["in_service"])
        if replaced:
            conn.execute(update(SwitchingChange).where(SwitchingChange.id.in_(replaced))
                         .values(status="replaced", ended_run=run_id))
        _write_edges(conn, stored, edges, run_id)
        if edges:
            conn.execute(insert(Snapshot).values(
                run_id=run_id, created_at=now, label=f"switching:{origin}",
                counts={"edges": {"added": 0, "changed": len(edges), "removed": 0}}))
        after = model_stamp(conn)
    return SwitchingApplied(run_id, ids, edges, before, after, replaced)


def _write_edges(conn: Connection, stored: dict[str, dict[str, Any]],
                 edges: dict[str, tuple[bool, bool]], run_id: int) -> None:
    """Archive the former versions of ``edges`` and write their new state and hash."""
    if not edges:
        return
    versioning.archive(conn, "edges", pl.DataFrame({"edge_id": sorted(edges)}), run_id)
    frame = pl.DataFrame([{**stored[e], "normal_open": edges[e][0], "in_service": edges[e][1]}
                          for e in sorted(edges)])
    hashes = versioning.row_hash(frame.rename({"row_hash": "former_hash"}))
    for edge_id, digest in zip(frame["edge_id"].to_list(), hashes.to_list(), strict=True):
        normal_open, in_service = edges[edge_id]
        conn.execute(update(Edge).where(Edge.edge_id == edge_id).values(
            normal_open=normal_open, in_service=in_service, valid_from_run=run_id,
            row_hash=digest))


def export_time(conn: Connection, run_id: int) -> dt.datetime:
    """When the export ingested by ``run_id`` was taken: the newest modification time of its
    edges files, else the run's start."""
    paths = conn.execute(select(IngestFile.path).where(
        IngestFile.run_id == run_id, IngestFile.table_name == "edges")).scalars().all()
    times = [os.stat(p).st_mtime for p in paths if Path(p).exists()]
    if times:
        return dt.datetime.fromtimestamp(max(times), dt.UTC)
    started = conn.scalar(select(IngestRun.started_at).where(IngestRun.id == run_id))
    return as_utc(started) if started is not None else utcnow()


def switching_overrides(conn: Connection, edges: pl.DataFrame, run_id: int) -> pl.DataFrame:
    """The ingest's hook: ``edges`` (database-shaped, about to replace the table) with the
    active switching changes that win over this export applied, and the others ended (see
    the module for the rule). Runs in the load's transaction."""
    _lock(conn)
    active = conn.execute(select(SwitchingChange).where(SwitchingChange.status == "active")
                          .order_by(SwitchingChange.at, SwitchingChange.id)).all()
    if not active:
        return edges
    exported_at = export_time(conn, run_id)
    devices = sorted({c.device_id for c in active})
    exported = {r["edge_id"]: r for r in edges.filter(pl.col("edge_id").is_in(devices))
                .select("edge_id", *FLAGS).iter_rows(named=True)}
    kept: dict[str, dict[str, bool]] = {}
    ended: dict[str, list[int]] = {"confirmed": [], "overridden": []}
    for change in active:
        export = exported.get(change.device_id)
        given = {f: bool(getattr(change, f)) for f in FLAGS if getattr(change, f) is not None}
        if export is None:
            ended["overridden"].append(change.id)
        elif change.pinned or as_utc(change.at) > exported_at:
            kept.setdefault(change.device_id, {}).update(given)
        else:
            same = all(export[f] is not None and bool(export[f]) == v for f, v in given.items())
            ended["confirmed" if same else "overridden"].append(change.id)
    for status, ids in ended.items():
        if ids:
            conn.execute(update(SwitchingChange).where(SwitchingChange.id.in_(ids))
                         .values(status=status, ended_run=run_id))
    for flag in FLAGS:
        values = {d: v[flag] for d, v in kept.items() if flag in v}
        if values:
            edges = edges.with_columns(pl.col("edge_id").replace_strict(
                list(values), list(values.values()), default=pl.col(flag),
                return_dtype=pl.Boolean).alias(flag))
    return edges


def list_switching(engine: Engine, *, status: str | None = None, device: str | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
    """Recorded switching changes, newest first (``status``/``device`` filter them)."""
    query = select(SwitchingChange).order_by(SwitchingChange.id.desc()).limit(limit)
    if status:
        query = query.where(SwitchingChange.status == status)
    if device:
        query = query.where(SwitchingChange.device_id == device)
    with engine.connect() as conn:
        found = conn.execute(query).all()
    return [{"id": c.id, "device": c.device_id, "normal_open": c.normal_open,
             "in_service": c.in_service, "at": as_utc(c.at).isoformat(timespec="seconds"),
             "note": c.note, "recorded_by": c.recorded_by,
             "recorded_at": as_utc(c.recorded_at).isoformat(timespec="seconds"),
             "origin": c.origin, "line": c.origin_line, "run_id": c.run_id,
             "pinned": c.pinned, "status": c.status, "ended_run": c.ended_run}
            for c in found]


def set_pinned(engine: Engine, ids: Sequence[int], pinned: bool) -> int:
    """Pin (or unpin) the changes ``ids``; only active changes can be pinned.
    :class:`InputError` naming unknown or ended ones, with nothing changed."""
    with engine.begin() as conn:
        found = dict(conn.execute(select(SwitchingChange.id, SwitchingChange.status)
                                  .where(SwitchingChange.id.in_(list(ids)))).all())
        unknown = sorted(set(ids) - set(found))
        if unknown:
            raise InputError(f"unknown switching change id(s): {', '.join(map(str, unknown))}")
        ended = sorted(i for i in ids if found[i] != "active")
        if pinned and ended:
            raise InputError(f"switching change(s) {', '.join(map(str, ended))} no longer "
                             "active: record the change again to pin it")
        result = conn.execute(update(SwitchingChange).where(SwitchingChange.id.in_(list(ids)))
                              .values(pinned=pinned))
    return int(result.rowcount or 0)
