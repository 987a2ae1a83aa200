"""Record versioning: which rows an ingest adds, changes or removes, and their history.

Every versioned table (:data:`~gridtopo.db.models.VERSIONED_KEYS`) stores, per row, the run its
content dates from (``valid_from_run``) and a hash of that content (``row_hash``). Before a new
model replaces the old one, :func:`plan` compares the new rows' hashes with the stored ones, and
:func:`archive` moves the former version of every changed or removed row into the table's
``<name>_history`` twin, closed at the new run. The model as of run R is therefore::

    SELECT … FROM t WHERE valid_from_run <= R
    UNION ALL
    SELECT … FROM t_history WHERE valid_from_run <= R AND valid_to_run > R

The hash covers the content only — not the source file and line, nor the run that wrote it — so
a re-export of the same data in another order or file is no change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, text

from gridtopo.db.bulk import bulk_insert
from gridtopo.db.models import HISTORY_TABLES, VERSIONED_KEYS
from gridtopo.db.read.frames import read_table

BOOKKEEPING = ("id", "source_file_id", "source_line", "valid_from_run", "row_hash", "run_id")
"""Columns that say where or when a row came from, not what it says."""

HASH_SEED = 0x6772696474706F
"""Fixed seed: a row's hash must not change between runs. It may change between polars
versions, which then reads as one run in which every row changed with equal content. Rows are
only compared with the former version of the same key, so a 64-bit hash is ample."""


@dataclass(frozen=True)
class VersionPlan:
    """What one table's reload changes: new rows with their ``valid_from_run``, keys to archive."""

    rows: pl.DataFrame
    archive_keys: pl.DataFrame
    added: int
    changed: int
    removed: int

    @property
    def counts(self) -> dict[str, int]:
        """``{"added": …, "changed": …, "removed": …}``."""
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


def row_hash(frame: pl.DataFrame) -> pl.Series:
    """A signed 64-bit hash of each row's content (as stored in ``row_hash``): every column of
    the database-shaped ``frame`` but the bookkeeping ones (points come as lon/lat columns)."""
    columns = sorted(c for c in frame.columns if c not in BOOKKEEPING)
    hashed = frame.select(columns).hash_rows(seed=HASH_SEED)
    return hashed.reinterpret(signed=True).alias("row_hash")


def plan(conn: Connection, table: str, rows: pl.DataFrame, run_id: int) -> VersionPlan:
    """Compare ``rows`` (database-shaped, about to replace ``table``) with what is stored."""
    keys = list(VERSIONED_KEYS[table])
    hashes = rows.select(keys).with_columns(row_hash(rows))
    stored = read_table(
        conn, table, {**dict.fromkeys(keys, pl.Utf8), "row_hash": pl.Int64,
                      "valid_from_run": pl.Int64},
    ).rename({"row_hash": "old_hash", "valid_from_run": "old_from"})
    # join keys and hashes only (never the wide rows), keeping the rows' order
    merged = hashes.join(stored, on=keys, how="left", maintain_order="left")
    same = (pl.col("old_hash") == pl.col("row_hash")).fill_null(False)
    versions = merged.select(
        "row_hash",
        pl.when(same).then(pl.col("old_from")).otherwise(pl.lit(run_id))
        .cast(pl.Int64).alias("valid_from_run"),
    )
    changed = merged.filter(pl.col("old_hash").is_not_null() & ~same)
    removed = stored.join(hashes.select(keys), on=keys, how="anti")
    return VersionPlan(
        rows=rows.with_columns(versions),
        archive_keys=pl.concat([changed.select(keys), removed.select(keys)]),
        added=int(merged["old_hash"].is_null().sum()),
        changed=changed.height,
        removed=removed.height,
    )


@contextmanager
def key_table(conn: Connection, keys: pl.DataFrame) -> Iterator[str]:
    """``keys`` (string key columns) as a temporary table for the block; yields its name, so
    that statements can join or match on it instead of listing keys in SQL."""
    conn.execute(text('DROP TABLE IF EXISTS "_gridtopo_keys"'))
    conn.execute(text('CREATE TEMPORARY TABLE "_gridtopo_keys" ('
                      + ", ".join(f'"{k}" VARCHAR(64)' for k in keys.columns) + ")"))
    bulk_insert(conn, "_gridtopo_keys", keys)
    try:
        yield "_gridtopo_keys"
    finally:
        conn.execute(text('DROP TABLE "_gridtopo_keys"'))


def archive(conn: Connection, table: str, keys: pl.DataFrame, run_id: int) -> int:
    """Copy the stored versions of ``keys`` into ``<table>_history``, valid until ``run_id``."""
    if keys.is_empty():
        return 0
    history = HISTORY_TABLES[table]
    columns = [c.name for c in history.columns if c.name != "valid_to_run"]
    key_columns = list(VERSIONED_KEYS[table])
    listed = ", ".join(f'"{c}"' for c in columns)
    selected = ", ".join(f't."{c}"' for c in columns)
    joined = " AND ".join(f't."{k}" = k."{k}"' for k in key_columns)
    with key_table(conn, keys.select(key_columns)) as temporary:
        result = conn.execute(text(
            f'INSERT INTO "{history.name}" ({listed}, valid_to_run) '
            f'SELECT {selected}, :run FROM "{table}" t JOIN "{temporary}" k ON {joined}'
        ), {"run": run_id})
    return int(result.rowcount or 0)
