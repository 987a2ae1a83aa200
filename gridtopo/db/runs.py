"""What ingest runs did: the run list and the quarantined rows a steward must look at.

>>> runs(engine)[0]["status"]
'succeeded'
>>> quarantined(engine, rule="missing_required").select("line", "field").rows()
[(263, 'customer_name'), (1342, 'customer_name'), (1365, 'area_code')]
"""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select

from gridtopo.db.models import IngestFile, IngestRun, QuarantinedRow
from gridtopo.db.runlock import during_load
from gridtopo.errors import InputError

QUARANTINE_COLUMNS = ("run_id", "table", "file", "line", "field", "value", "rule", "row_kept",
                      "entity_id", "message")
"""Columns of :func:`quarantined`: ``row_kept`` true for a field set aside in a row that was
loaded without it, false for a row that was refused whole."""


def runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first, with their totals and the reason of a failure; never
    waits on a load (:func:`~gridtopo.db.runlock.during_load`)."""
    with during_load(engine), engine.connect() as conn:
        rows = conn.execute(
            select(IngestRun.id, IngestRun.status, IngestRun.started_at, IngestRun.finished_at,
                   IngestRun.source, IngestRun.user_name, IngestRun.message, IngestRun.summary,
                   IngestRun.pid, IngestRun.host, IngestRun.heartbeat_at)
            .order_by(IngestRun.id.desc()).limit(limit)
        ).all()
    result = []
    for row in rows:
        summary = row.summary or {}
        result.append({
            "run_id": row.id, "status": row.status, "started_at": row.started_at,
            "finished_at": row.finished_at, "source": row.source, "user": row.user_name,
            "outcome": summary.get("status"), "totals": summary.get("totals"),
            "message": row.message, "pid": row.pid, "host": row.host,
            "heartbeat_at": row.heartbeat_at,
        })
    return result


def model_run(engine: Engine) -> int | None:
    """Id of the run whose model is live: the newest succeeded ingest run (None before any).

    Everything derived from the model (the query index, an audit) is stamped with it, so a
    newer model is noticed by comparing run ids."""
    with engine.connect() as conn:
        run_id = conn.scalar(select(func.max(IngestRun.id)).where(IngestRun.status == "succeeded"))
    return None if run_id is None else int(run_id)


def latest_run(engine: Engine) -> int:
    """Id of the newest run, whatever its outcome (the one a steward looks at first);
    :class:`InputError` when there is none."""
    with engine.connect() as conn:
        run_id = conn.scalar(select(func.max(IngestRun.id)))
    if run_id is None:
        raise InputError("no ingest run yet: run `gridtopo ingest SOURCE` first")
    return int(run_id)


def quarantined(
    engine: Engine,
    run_id: int | None = None,
    *,
    table: str | None = None,
    rule: str | None = None,
    kept: bool | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Quarantined rows of a run (default: the latest), in file and line order; ``kept``
    True gives only the fields set aside in kept rows, False only the refused rows."""
    run = latest_run(engine) if run_id is None else run_id
    query = (
        select(QuarantinedRow.run_id, IngestFile.table_name, IngestFile.path,
               QuarantinedRow.line, QuarantinedRow.field, QuarantinedRow.value,
               QuarantinedRow.rule, QuarantinedRow.row_kept, QuarantinedRow.entity_id,
               QuarantinedRow.message)
        .join(IngestFile, IngestFile.id == QuarantinedRow.file_id)
        .where(QuarantinedRow.run_id == run)
        .order_by(IngestFile.path, QuarantinedRow.line, QuarantinedRow.id)
    )
    if table:
        query = query.where(IngestFile.table_name == table)
    if rule:
        query = query.where(QuarantinedRow.rule == rule)
    if kept is not None:
        query = query.where(QuarantinedRow.row_kept == kept)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        if conn.scalar(select(IngestRun.id).where(IngestRun.id == run)) is None:
            raise InputError(f"no ingest run {run}: see `gridtopo runs`")
        rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=list(QUARANTINE_COLUMNS), orient="row",
                        infer_schema_length=None)
