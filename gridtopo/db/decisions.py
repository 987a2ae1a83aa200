"""Stored steward decisions: the rulings of :mod:`gridtopo.reconcile.decisions`, kept across runs.

A later decisions file updates the stored rulings (one per link kind and entity); it does not
replace them. Accepting an audit finding whose fix is a link stores a decision the same way.
"""

from __future__ import annotations

import getpass

import polars as pl
from sqlalchemy import Connection, delete, insert, select

from gridtopo.clock import utcnow
from gridtopo.db.models import StewardDecision


def store_decisions(conn: Connection, decisions: pl.DataFrame, origin: str) -> int:
    """Upsert decisions into ``steward_decisions``; return how many rows were written."""
    if decisions.is_empty():
        return 0
    user = getpass.getuser()
    now = utcnow()
    keys = decisions.select("link_kind", "entity_id").rows()
    for kind in {k for k, _ in keys}:
        ids = [e for k, e in keys if k == kind]
        for start in range(0, len(ids), 500):
            conn.execute(delete(StewardDecision).where(
                StewardDecision.link_kind == kind,
                StewardDecision.entity_id.in_(ids[start:start + 500]),
            ))
    conn.execute(
        insert(StewardDecision),
        [
            {**row, "decided_by": user, "decided_at": now, "origin": origin}
            for row in decisions.to_dicts()
        ],
    )
    return decisions.height


def stored_decisions(conn: Connection) -> pl.DataFrame:
    """Every stored decision as ``link_kind, entity_id, decision``."""
    rows = conn.execute(
        select(StewardDecision.link_kind, StewardDecision.entity_id, StewardDecision.decision)
    ).all()
    return pl.DataFrame(
        [tuple(r) for r in rows], orient="row",
        schema={"link_kind": pl.Utf8, "entity_id": pl.Utf8, "decision": pl.Utf8},
    )
