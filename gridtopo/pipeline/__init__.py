"""One ingest run: read both systems' exports, reconcile them, replace the model atomically.

One ingest at a time per database: the run holds the database's ingest lock
(:mod:`gridtopo.db.runlock`) throughout, and a second one is refused naming the first (or, with
``wait=True``, queues behind it); runs left ``running`` by a process that died are marked
``interrupted`` first. The run is recorded in ``ingest_runs`` (with its process id, host and a
heartbeat) before anything else. Reading and reconciling happen outside the database; the
load of files' accounting, quarantined rows, steward decisions, model and links — and the
run's own ``succeeded`` — happens in one transaction, so a model is never live under a
``running`` run and a failure (or a ``kill -9``) leaves the previous model intact; a failed
run is marked ``failed`` with the reason. A full export that would delete or shrink a table
of the model is refused before loading (:mod:`gridtopo.pipeline.guard`); a full disk or a
lost database connection is an :class:`~gridtopo.errors.EnvironmentFailure` saying what to
do, not an internal error.

Runs are idempotent: when the inputs (file checksums, profile, stored steward decisions and
gridtopo version) equal those of the last successful run, the model is left untouched and the
run reports ``unchanged``; ``force=True`` reloads anyway, producing the same model.

>>> report = ingest(engine, sources)   # the sources of the model ``engine`` already holds
>>> report.status, report.totals["rows_read"], report.totals["rows_quarantined"]
('unchanged', 2659, 2)
>>> ingest(engine, sources, force=True).status
'loaded'
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from gridtopo import __version__
from gridtopo.clock import utcnow
from gridtopo.db.bulk import bulk_insert, foreign_keys_checked_at_end, rollback_journal
from gridtopo.db.decisions import store_decisions, stored_decisions
from gridtopo.db.models import IngestFile, IngestRun, Snapshot
from gridtopo.db.runlock import IngestLock, ingest_lock
from gridtopo.db.runs import model_run
from gridtopo.db.sourcestate import read_state, state_dir
from gridtopo.errors import EnvironmentFailure, InputError
from gridtopo.ingest import FileAccount, Profile, SourceBundle, load_profile, read_sources
from gridtopo.ingest.limits import Limits
from gridtopo.pipeline.changes import (
    after_run,
    carry_quarantine,
    changed_tables,
    fingerprint,
    prepare_sources,
    read_extract,
    same_files,
)
from gridtopo.pipeline.changes import load as load_changes
from gridtopo.pipeline.guard import refuse_shrink
from gridtopo.progress import ProgressCallback, pause_point
from gridtopo.reconcile.decisions import read_decisions
from gridtopo.reconcile.links import Reconciliation, reconcile


@dataclass
class IngestReport:
    """What a run did: accounting per file, reconciliation summary, rows loaded, timings."""

    run_id: int
    status: str
    source: str
    files: list[dict[str, Any]]
    totals: dict[str, int]
    reconciliation: dict[str, Any]
    loaded: dict[str, int]
    changes: dict[str, dict[str, int]]
    warnings: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)
    unlinked: pl.DataFrame | None = None
    index: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the unlinked frame)."""
        data = asdict(self)
        data.pop("unlinked")
        return data


def _totals(files: list[FileAccount]) -> dict[str, int]:
    keys = ("rows_read", "rows_loaded", "rows_quarantined", "rows_merged", "fields_quarantined")
    return {k: sum(getattr(f, k) for f in files) for k in keys}


def content_hash(bundle: SourceBundle, profile: Path | None, decisions: pl.DataFrame) -> str:
    """Fingerprint of everything a run's model depends on."""
    return fingerprint([(f.table, f.path, f.sha256) for f in bundle.files], profile, decisions)


def _read_full(reader: Callable[[Path, Profile | None, ProgressCallback | None], SourceBundle],
               source: Path, profile: Profile | None, progress: ProgressCallback | None
               ) -> SourceBundle:
    return reader(source, profile, progress)


def _unchanged(engine: Engine, run_id: int, source: Path, last: dict[str, Any],
               seconds: float) -> IngestReport:
    """Finish run ``run_id`` as ``unchanged``: its files are byte for byte the last run's."""
    report = IngestReport(run_id=run_id, status="unchanged", source=str(source),
                          files=last["files"], totals=last["totals"], reconciliation={},
                          loaded={}, changes={}, warnings=last["warnings"],
                          seconds={"checksums": round(seconds, 3)})
    summary = {**report.to_dict(), "content_hash": last["content_hash"], "extract_hash": None}
    _finish_run(engine, run_id, "succeeded", None, summary)
    after_run(engine, report, None, (set(), False))
    return report


def _start_run(engine: Engine, source: Path, profile: Path | None, lock: IngestLock) -> int:
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            insert(IngestRun).values(
                source=str(source), profile=str(profile) if profile else None,
                gridtopo_version=__version__, user_name=getpass.getuser(),
                host=socket.gethostname(), pid=os.getpid(), status="running",
                started_at=now, heartbeat_at=now,
            ).returning(IngestRun.id)
        )
        run_id = int(result.scalar_one())
        lock.describe(run_id, getpass.getuser(), now, os.getpid(), socket.gethostname())
        return run_id


def _beat(engine: Engine, run_id: int) -> None:
    """The run's heartbeat: it is alive and past another phase."""
    with engine.begin() as conn:
        conn.execute(update(IngestRun).where(IngestRun.id == run_id)
                     .values(heartbeat_at=utcnow()))


MESSAGE_CHARS = 2000
"""Longest failure message a run stores (messages quote input only as short snippets)."""


def _finish_run(target: Engine | Connection, run_id: int, status: str, message: str | None,
                summary: dict[str, Any] | None) -> None:
    """Record the run's outcome: on ``target``'s connection, in its transaction (a loaded
    model), or in a transaction of its own (``target`` an engine)."""
    if message is not None and len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "…"
    values = {"status": status, "finished_at": utcnow(), "heartbeat_at": utcnow(),
              "message": message, "summary": summary}
    statement = update(IngestRun).where(IngestRun.id == run_id).values(**values)
    if isinstance(target, Connection):
        target.execute(statement)
        return
    with target.begin() as conn:
        conn.execute(statement)


DISK_FULL = ("database or disk is full", "no space left on device", "could not extend file")
CONNECTION_LOST = ("server closed the connection", "terminating connection",
                   "connection is closed", "could not receive data", "could not send data",
                   "connection to server", "ssl syscall error", "connection reset",
                   "consuming input failed")


def environment_failure(err: BaseException) -> EnvironmentFailure | None:
    """An :class:`EnvironmentFailure` saying what to do when ``err`` is a full disk or a lost
    database connection; None for anything else."""
    text = str(getattr(err, "orig", None) or err).strip().splitlines()
    reason = text[0] if text else type(err).__name__
    folded = reason.casefold()
    full = (isinstance(err, OSError) and err.errno == errno.ENOSPC) or (
        isinstance(err, DBAPIError) and any(s in folded for s in DISK_FULL))
    if full:
        return EnvironmentFailure(
            f"the disk is full ({reason}): nothing was changed, the previous model is intact. "
            "Free space where the database lives (a full load needs room for a second copy "
            "of the model while it commits) and run the ingest again")
    lost = isinstance(err, DBAPIError) and (err.connection_invalidated or any(
        s in folded for s in CONNECTION_LOST))
    if lost:
        return EnvironmentFailure(
            f"lost the connection to the database during the run ({reason}): nothing was "
            "changed, the previous model is intact. Check that the server is up and "
            "reachable, then run the ingest again")
    return None


def _last_summary(conn: Connection) -> dict[str, Any] | None:
    summary = conn.execute(
        select(IngestRun.summary).where(IngestRun.status == "succeeded")
        .order_by(IngestRun.id.desc()).limit(1)
    ).scalar()
    return dict(summary) if summary else None


def _last_content_hash(conn: Connection, key: str = "content_hash") -> str | None:
    summary = _last_summary(conn)
    return summary.get(key) if summary else None


def _record_files(conn: Connection, run_id: int, bundle: SourceBundle) -> list[int]:
    ids = []
    for account in bundle.files:
        values = {k: v for k, v in asdict(account).items() if k != "table"}
        values["table_name"] = account.table
        result = conn.execute(
            insert(IngestFile).values(run_id=run_id, **values).returning(IngestFile.id)
        )
        ids.append(int(result.scalar_one()))
    return ids


def _record_quarantine(conn: Connection, run_id: int, bundle: SourceBundle,
                       file_ids: list[int]) -> int:
    frames = [t.quarantine for t in bundle.tables.values() if t.quarantine.height]
    if not frames:
        return 0
    rows = pl.concat(frames, how="diagonal_relaxed").select(
        pl.lit(run_id).alias("run_id"),
        pl.col("file").replace_strict(list(range(len(file_ids))), file_ids,
                                      return_dtype=pl.Int64).alias("file_id"),
        "line", "field", "value", "rule", "message", "raw", "row_kept", "entity_id",
    )
    return bulk_insert(conn, "quarantined_rows", rows)


def ingest(
    engine: Engine,
    source: Path,
    *,
    profile: Path | None = None,
    decisions: Path | None = None,
    force: bool = False,
    changes: bool = False,
    allow_shrink: tuple[str, ...] = (),
    wait: bool = False,
    progress: ProgressCallback | None = None,
    reader: Callable[[Path, Profile | None, ProgressCallback | None], SourceBundle] = read_sources,
    reconciler: Callable[[Mapping[str, pl.DataFrame], pl.DataFrame], Reconciliation] = reconcile,
) -> IngestReport:
    """Ingest ``source`` into the database of ``engine``; see the module docstring.

    ``reader`` and ``reconciler`` do the reading and the reconciling — by default in this
    process, one partition; :class:`gridtopo.partitions.PartitionedRun` offers both per
    partition (in this process or on Spark) with the same answer. ``changes``: ``source`` is
    a change file (增量) applied to the live model (:mod:`gridtopo.pipeline.changes`); a full
    export is written change-proportionally too when the previous run's sources are kept.
    ``allow_shrink``: tables a full export may empty or shrink (:mod:`~gridtopo.pipeline.guard`);
    ``wait``: queue behind a running ingest instead of being refused."""
    with ingest_lock(engine, wait=wait) as lock:
        kept = read_state(state_dir(engine), model_run(engine), tables=changes)
        if changes and kept is None:
            raise InputError(f"{source}: a change file applies to the sources of the last full "
                             f"ingest, and none is kept for this database (run `gridtopo ingest "
                             f"FOLDER` with a full export first)")
        run_id = _start_run(engine, source, profile, lock)
        try:
            return _run(engine, run_id, source, kept, profile=profile, decisions=decisions,
                        force=force, changes=changes, allow_shrink=allow_shrink,
                        progress=progress, reader=reader, reconciler=reconciler)
        except BaseException as err:
            failure = environment_failure(err)
            message = f"{type(failure or err).__name__}: {failure or err}"
            # the database may be gone too: then the next command marks the run interrupted
            with contextlib.suppress(Exception):
                _finish_run(engine, run_id, "failed", message, None)
            if failure is not None:
                raise failure from err
            raise


def _run(engine: Engine, run_id: int, source: Path, kept: Any, *, profile: Path | None,
         decisions: Path | None, force: bool, changes: bool, allow_shrink: tuple[str, ...],
         progress: ProgressCallback | None,
         reader: Callable[[Path, Profile | None, ProgressCallback | None], SourceBundle],
         reconciler: Callable[[Mapping[str, pl.DataFrame], pl.DataFrame], Reconciliation],
         ) -> IngestReport:
    """Run ``run_id`` (see :func:`ingest`), holding the lock."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    pause_point("read")
    if not (force or changes or decisions) and reader is read_sources:
        with engine.begin() as conn:
            last = _last_summary(conn)
            same = bool(last) and same_files(conn, source, profile,
                                             last.get("content_hash") if last else None)
            if same and last:
                carry_quarantine(conn, int(last["run_id"]), run_id, pl.DataFrame(
                    schema={"table_name": pl.Utf8, "entity_id": pl.Utf8}))
        if same and last:
            return _unchanged(engine, run_id, source, last, time.perf_counter() - started)
    loaded_profile = load_profile(profile) if profile else None
    bundle = (read_extract if changes else _read_full)(reader, source, loaded_profile, progress)
    new_decisions = read_decisions(decisions) if decisions else None
    seconds["read"] = time.perf_counter() - started
    _beat(engine, run_id)
    if not changes:
        limits = loaded_profile.limits if loaded_profile else Limits()
        with engine.connect() as conn:
            refuse_shrink(conn, bundle, limits.shrink_floor, allow_shrink)
    with rollback_journal(engine), engine.connect() as conn, \
            foreign_keys_checked_at_end(conn), conn.begin():
        file_ids = _record_files(conn, run_id, bundle)
        _record_quarantine(conn, run_id, bundle, file_ids)
        if new_decisions is not None:
            store_decisions(conn, new_decisions, origin=str(decisions))
        all_decisions = stored_decisions(conn)
        fingerprint = content_hash(bundle, profile, all_decisions)
        sources = prepare_sources(conn, run_id, bundle, file_ids,
                                  kept if changes else None, source, fingerprint,
                                  _last_content_hash(conn),
                                  _last_content_hash(conn, "extract_hash"))
        unchanged = not force and sources.fingerprint == _last_content_hash(conn)
        fingerprint, tables = sources.fingerprint, sources.tables
        touched: tuple[set[str], bool] = (set(), False)
        recon: Reconciliation | None = None
        loaded: dict[str, int] = {}
        counts: dict[str, dict[str, int]] = {}
        load_seconds: dict[str, float] = {}
        new_state = index_customers = None
        if not unchanged:
            started = time.perf_counter()
            recon = reconciler(tables, all_decisions)
            seconds["reconcile"] = time.perf_counter() - started
            started = time.perf_counter()
            result, new_state, index_customers = load_changes(conn, tables, recon, run_id,
                                                              None if force else kept,
                                                              sources.personal, progress)
            loaded, counts = result.written, result.changes
            touched = changed_tables(conn, result, run_id)
            load_seconds = result.seconds
            if result.changed:
                conn.execute(insert(Snapshot).values(
                    run_id=run_id, created_at=utcnow(), counts=counts,
                    content_hash=fingerprint,
                ))
            seconds["load"] = time.perf_counter() - started
            pause_point("load")
        report = IngestReport(
            run_id=run_id,
            status="unchanged" if unchanged else "loaded",
            source=str(source),
            files=[{**asdict(f), "file_id": i} for f, i in zip(bundle.files, file_ids,
                                                               strict=True)],
            totals=_totals(bundle.files),
            reconciliation=recon.summary if recon else {},
            loaded=loaded,
            changes=counts,
            warnings=list(bundle.warnings),
            seconds={k: round(v, 3) for k, v in seconds.items()},
            load_seconds=load_seconds,
            unlinked=recon.unlinked if recon else None,
        )
        summary = {**report.to_dict(), "content_hash": fingerprint,
                   "extract_hash": sources.extract}
        # the run's outcome commits with the model: never a live model under a running run
        _finish_run(conn, run_id, "succeeded", None, json.loads(json.dumps(summary,
                                                                           default=str)))
        pause_point("commit")
        started = time.perf_counter()
    if not unchanged:
        report.seconds["commit"] = round(time.perf_counter() - started, 3)
    # the commit's time joins the stored summary afterwards (the run is succeeded already)
    summary["seconds"] = report.seconds
    with contextlib.suppress(DBAPIError), engine.begin() as conn:
        conn.execute(update(IngestRun).where(IngestRun.id == run_id).values(
            summary=json.loads(json.dumps(summary, default=str)), heartbeat_at=utcnow()))
    after_run(engine, report, None if unchanged else new_state, touched,
              None if unchanged else index_customers)
    return report
