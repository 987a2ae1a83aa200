"""Refuse, don't delete: a full export that would empty or shrink part of the model.

The most ordinary export mistake — a table's file left out, or exported with only its header
— would otherwise replace that table with nothing: every customer gone, every customer of a
header-only transformer file unlinked. So before a full export is loaded, each table the
live model holds is checked: a table with no file in the export, or whose rows to load fall
below :data:`~gridtopo.ingest.limits.Limits.shrink_floor` (default half) of the rows the
model holds, refuses the run with :class:`~gridtopo.errors.RefusedInputError` (exit 2),
naming the file and both counts — unless the steward names the table with
``--allow-shrink TABLE``. A change file (``ingest --changes``) is never checked: there, a
table without a file simply has no change.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from sqlalchemy import Connection, func, select

from gridtopo.db.models import Base
from gridtopo.errors import RefusedInputError
from gridtopo.ingest import SourceBundle
from gridtopo.ingest.tables import TABLES


def model_counts(conn: Connection) -> dict[str, int]:
    """Rows of each canonical table in the live model."""
    tables = Base.metadata.tables
    return {name: int(conn.execute(select(func.count()).select_from(tables[name])).scalar_one())
            for name in TABLES}


def shrink_problems(bundle: SourceBundle, held: dict[str, int], floor: float,
                    allowed: Collection[str]) -> dict[str, str]:
    """Table → why, for each table that the export would empty or shrink below ``floor`` of
    the ``held`` rows (tables in ``allowed`` aside)."""
    problems: dict[str, str] = {}
    for name, before in held.items():
        if before == 0 or name in allowed:
            continue
        files = [f for f in bundle.files if f.table == name]
        if name not in bundle.tables or not files:
            looked = ", ".join(TABLES[name].file_names[:4])
            problems[name] = (f"no file for {name} in the export (looked for names like "
                              f"{looked}) — the model holds {before:,} {name}, which it "
                              "would delete")
            continue
        after = bundle.tables[name].frame.height
        if after >= floor * before:
            continue
        names = ", ".join(Path(f.path).name for f in files)
        read = sum(f.rows_read for f in files)
        what = "header only, no rows" if read == 0 else f"{read:,} rows read"
        problems[name] = (f"{names}: {after:,} {name} to load ({what}) where the model "
                          f"holds {before:,} — below {floor:.0%} of them")
    return problems


def refuse_shrink(conn: Connection, bundle: SourceBundle, floor: float,
                  allowed: Collection[str]) -> None:
    """Raise :class:`RefusedInputError` when :func:`shrink_problems` finds any."""
    problems = shrink_problems(bundle, model_counts(conn), floor, allowed)
    if problems:
        flags = " ".join(f"--allow-shrink {name}" for name in problems)
        raise RefusedInputError(
            "refused, nothing was changed: " + "; ".join(problems.values()) + ". If the "
            f"export really is meant to remove these rows, run again with {flags}")
