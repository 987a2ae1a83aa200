"""The findings worklist: stored findings whose status carries over from run to run.

A finding is identified across runs by its fingerprint (rule, entity type, entity id). After an
audit:

* a new finding is stored ``open``; a known one gets the run's message, evidence and fix;
* a ``fixed`` finding found again is **reopened**; ``waived`` and ``accepted`` ones keep their
  status;
* an ``open`` or ``accepted`` finding that its rule no longer finds is marked ``fixed`` by the
  audit (the data was corrected).

Stewards set statuses with :func:`set_status` (CLI ``gridtopo findings set``). Accepting a
finding whose suggested fix is a link stores that link as a steward decision, which the next
ingest applies.

>>> from gridtopo.quality.audit import run_audit
>>> from gridtopo.quality.config import load_config
>>> result = run_audit(engine, load_config(None), gx=False)
>>> set_status(engine, [1, 2], "waived", note="checked on site")["changed"]
2
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, select, text, update

from gridtopo.clock import utcnow
from gridtopo.db.bulk import bulk_insert
from gridtopo.db.decisions import store_decisions
from gridtopo.db.models import FINDING_STATUSES, Finding
from gridtopo.quality.errors import UnknownFindingError

STORED_COLUMNS = ("fingerprint", "rule", "dimension", "severity", "entity_type", "entity_id",
                  "message", "evidence", "suggested_fix")
AUDIT_USER = "audit"


def fingerprint(rule: pl.Expr, entity_type: pl.Expr, entity_id: pl.Expr) -> pl.Expr:
    """Stable id of a finding across runs: SHA-256 of ``rule|entity_type|entity_id``."""
    joined = pl.concat_str([rule, entity_type, entity_id], separator="|")
    return joined.map_elements(lambda s: hashlib.sha256(s.encode()).hexdigest(),
                               return_dtype=pl.Utf8)


def store_findings(conn: Connection, run_id: int, frame: pl.DataFrame,
                   rules_run: Sequence[str]) -> dict[str, int]:
    """Merge one run's findings (:data:`STORED_COLUMNS`) into ``findings``; see the module
    docstring. Returns counts of new, reopened and resolved findings."""
    json_cast = "CAST(s.{0} AS JSON)" if conn.dialect.name == "postgresql" else "s.{0}"
    conn.execute(text("CREATE TEMPORARY TABLE audit_seen (" + ", ".join(
        f"{c} TEXT" for c in STORED_COLUMNS) + ")"))
    try:
        bulk_insert(conn, "audit_seen", frame.select(STORED_COLUMNS))
        conn.execute(text("CREATE INDEX ix_audit_seen ON audit_seen (fingerprint)"))
        now = utcnow()
        seen = select(text("fingerprint")).select_from(text("audit_seen"))
        reopened = conn.execute(
            update(Finding).where(Finding.status == "fixed", Finding.fingerprint.in_(seen))
            .values(status="open", status_by=AUDIT_USER, status_changed_at=now,
                    status_note=f"reopened: found again by audit run {run_id}")
        ).rowcount
        conn.execute(text(
            f"UPDATE findings SET last_seen_run = :run, message = s.message, "
            f"severity = s.severity, evidence = {json_cast.format('evidence')}, "
            f"suggested_fix = {json_cast.format('suggested_fix')} FROM audit_seen s "
            f"WHERE findings.fingerprint = s.fingerprint"), {"run": run_id})
        columns = ", ".join(STORED_COLUMNS)
        values = ", ".join(json_cast.format(c) if c in ("evidence", "suggested_fix")
                           else f"s.{c}" for c in STORED_COLUMNS)
        new = conn.execute(text(
            f"INSERT INTO findings ({columns}, status, first_seen_run, last_seen_run) "
            f"SELECT {values}, 'open', :run, :run FROM audit_seen s WHERE NOT EXISTS "
            f"(SELECT 1 FROM findings f WHERE f.fingerprint = s.fingerprint)"),
            {"run": run_id}).rowcount
    finally:
        conn.execute(text("DROP TABLE audit_seen"))
    resolved = conn.execute(
        update(Finding).where(Finding.status.in_(("open", "accepted")),
                              Finding.rule.in_(list(rules_run)),
                              (Finding.last_seen_run.is_(None))
                              | (Finding.last_seen_run != run_id))
        .values(status="fixed", status_by=AUDIT_USER, status_changed_at=now,
                status_note=f"not found by audit run {run_id}")
    ).rowcount
    return {"new": new, "reopened": reopened, "resolved": resolved}


def waived_fingerprints(conn: Connection) -> pl.Series:
    """Fingerprints a steward waived: they do not count against scores."""
    rows = conn.execute(select(Finding.fingerprint).where(Finding.status == "waived")).all()
    return pl.Series("fingerprint", [r[0] for r in rows], dtype=pl.Utf8)


def read_status_file(path: Path) -> pl.DataFrame:
    """A CSV naming findings by ``id`` (and optionally a ``note`` per row) as id, note."""
    from gridtopo.errors import InputError

    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise InputError(f"{path}: cannot read a CSV of finding ids: {err}") from err
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if "id" not in frame.columns:
        raise InputError(f"{path}: no 'id' column (one finding id per row, optional 'note')")
    ids = frame["id"].str.strip_chars().cast(pl.Int64, strict=False)
    if ids.null_count():
        line = int(ids.is_null().arg_max() or 0) + 2
        raise InputError(f"{path}: line {line}: not a finding id: {frame['id'][line - 2]!r}")
    notes = frame["note"] if "note" in frame.columns else pl.Series([None] * frame.height,
                                                                     dtype=pl.Utf8)
    return pl.DataFrame({"id": ids, "note": notes})


def set_status(engine: Engine, ids: Sequence[int], status: str, *, note: str | None = None,
               notes: Sequence[str | None] | None = None,
               user: str | None = None) -> dict[str, Any]:
    """Set ``status`` on the findings ``ids`` in one transaction.

    Unknown ids raise :class:`UnknownFindingError` and change nothing. Accepting a finding
    whose suggested fix is a link stores it as a steward decision (origin ``finding <id>``).
    """
    if status not in FINDING_STATUSES:
        raise UnknownFindingError(f"unknown status {status!r}: use one of "
                                  f"{', '.join(FINDING_STATUSES)}")
    user = user or getpass.getuser()
    per_id = dict(zip(ids, notes or [None] * len(ids), strict=True))
    with engine.begin() as conn:
        rows: list[Any] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids)[start:start + 500]
            rows += conn.execute(select(Finding.id, Finding.suggested_fix)
                                 .where(Finding.id.in_(chunk))).all()
        missing = sorted(set(ids) - {r[0] for r in rows})
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            raise UnknownFindingError(f"unknown finding id(s): {shown}; nothing was changed")
        now = utcnow()
        for fid in ids:
            conn.execute(update(Finding).where(Finding.id == fid).values(
                status=status, status_note=per_id[fid] or note, status_by=user,
                status_changed_at=now))
        stored = 0
        if status == "accepted":
            for fid, fix in rows:
                fix = json.loads(fix) if isinstance(fix, str) else fix
                if fix and fix.get("link_kind"):
                    decision = pl.DataFrame([{
                        "link_kind": fix["link_kind"], "entity_id": fix["entity_id"],
                        "decision": fix["to_id"], "note": per_id[fid] or note or fix.get("text"),
                    }])
                    stored += store_decisions(conn, decision, f"finding {fid}")
    return {"changed": len(ids), "status": status, "decisions": stored}


def list_findings(engine: Engine, *, rule: str | None = None, status: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """Stored findings (newest run first), optionally of one rule and/or status."""
    query = select(*Finding.__table__.columns).order_by(Finding.last_seen_run.desc(), Finding.id)
    if rule:
        query = query.where(Finding.rule == rule)
    if status:
        query = query.where(Finding.status == status)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{k: (json.loads(v) if k in ("evidence", "suggested_fix") and isinstance(v, str)
                 else v) for k, v in row.items()} for row in rows]

