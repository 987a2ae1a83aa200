"""One ingest run: read both systems' exports, reconcile them, replace the model atomically.

The run is recorded in ``ingest_runs`` before anything else, and marked ``succeeded`` or
``failed`` (with the reason) at the end. Reading and reconciling happen outside the database;
the load of files' accounting, quarantined rows, steward decisions, model and links happens in
one transaction, so a failure leaves the previous model intact.

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

import getpass
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, insert, select, update

from gridtopo import __version__
from gridtopo.clock import utcnow
from gridtopo.db.bulk import bulk_insert, foreign_keys_checked_at_end, rollback_journal
from gridtopo.db.decisions import store_decisions, stored_decisions
from gridtopo.db.models import IngestFile, IngestRun, Snapshot
from gridtopo.db.runs import model_run
from gridtopo.db.sourcestate import read_state, state_dir
from gridtopo.errors import InputError
from gridtopo.ingest import FileAccount, Profile, SourceBundle, load_profile, read_sources
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
from gridtopo.progress import ProgressCallback
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


def _start_run(engine: Engine, source: Path, profile: Path | None) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(IngestRun).values(
                source=str(source), profile=str(profile) if profile else None,
                gridtopo_version=__version__, user_name=getpass.getuser(),
                host=socket.gethostname(), status="running", started_at=utcnow(),
            ).returning(IngestRun.id)
        )
        return int(result.scalar_one())


def _finish_run(engine: Engine, run_id: int, status: str, message: str | None,
                summary: dict[str, Any] | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(IngestRun).where(IngestRun.id == run_id).values(
                status=status, finished_at=utcnow(), message=message, summary=summary
            )
        )


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
    progress: ProgressCallback | None = None,
    reader: Callable[[Path, Profile | None, ProgressCallback | None], SourceBundle] = read_sources,
    reconciler: Callable[[Mapping[str, pl.DataFrame], pl.DataFrame], Reconciliation] = reconcile,
) -> IngestReport:
    """Ingest ``source`` into the database of ``engine``; see the module docstring.

    ``reader`` and ``reconciler`` do the reading and the reconciling — by default in this
    process, one partition; :class:`gridtopo.partitions.PartitionedRun` offers both per
    partition (in this process or on Spark) with the same answer. ``changes``: ``source`` is
    a change file (增量) applied to the live model (:mod:`gridtopo.pipeline.changes`); a full
    export is written change-proportionally too when the previous run's sources are kept."""
    kept = read_state(state_dir(engine), model_run(engine), tables=changes)
    if changes and kept is None:
        raise InputError(f"{source}: a change file applies to the sources of the last full "
                         f"ingest, and none is kept for this database (run `gridtopo ingest "
                         f"FOLDER` with a full export first)")
    run_id = _start_run(engine, source, profile)
    seconds: dict[str, float] = {}
    try:
        started = time.perf_counter()
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
        bundle = (read_extract if changes else _read_full)(
            reader, source, load_profile(profile) if profile else None, progress)
        new_decisions = read_decisions(decisions) if decisions else None
        seconds["read"] = time.perf_counter() - started
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
            if not unchanged:
                started = time.perf_counter()
                recon = reconciler(tables, all_decisions)
                seconds["reconcile"] = time.perf_counter() - started
                started = time.perf_counter()
                result, new_state, index_customers = load_changes(conn, tables, recon, run_id,
                                                 None if force else kept, sources.personal,
                                                 progress)
                loaded, counts = result.written, result.changes
                touched = changed_tables(conn, result, run_id)
                load_seconds = result.seconds
                if result.changed:
                    conn.execute(insert(Snapshot).values(
                        run_id=run_id, created_at=utcnow(), counts=counts,
                        content_hash=fingerprint,
                    ))
                seconds["load"] = time.perf_counter() - started
            started = time.perf_counter()
        if not unchanged:
            seconds["commit"] = time.perf_counter() - started
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
        _finish_run(engine, run_id, "succeeded", None, json.loads(json.dumps(summary,
                                                                             default=str)))
        after_run(engine, report, None if unchanged else new_state, touched,
                  None if unchanged else index_customers)
        return report
    except BaseException as err:
        _finish_run(engine, run_id, "failed", f"{type(err).__name__}: {err}", None)
        raise
