"""Resolve repeated keys across all files of a table.

A row identical in every canonical field to an earlier row with the same key is *merged*: it
adds nothing, so it is counted (``rows_merged``) but neither loaded nor quarantined. When rows
with one key differ, one version is kept — the latest ``updated_at`` (a blank one is oldest),
on a tie the later row (by file, then line) — and the rows of every other version are
quarantined with the rule ``duplicate_conflict``, naming the fields that differ and the line
that was kept. Only rows whose key repeats are examined, so the cost is one hash pass over
the key column plus work proportional to the repeats.

>>> from gridtopo.ingest.sources import read_sources
>>> bundle = read_sources(sources)   # the generator repeats a few customers, one conflicting
>>> [(f.table, f.rows_merged) for f in bundle.files if f.rows_merged]
[('customers', 3)]
>>> bundle.tables["customers"].quarantine.filter(pl.col("rule") == "duplicate_conflict").height
1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from gridtopo.ingest.convert import PROBLEM_SCHEMA, RANK_DUPLICATE, ROW
from gridtopo.ingest.tables import Table

FILE = "_file"
_ORD = "_ord"


@dataclass(frozen=True)
class Deduplicated:
    """Positions (in the examined frame) of the rows not to load — merged or in conflict —,
    the merged rows (``_file``, ``_row``) and the conflict problems (``_file`` plus the
    problem columns)."""

    dropped: pl.Series
    merged: pl.DataFrame
    problems: pl.DataFrame


def deduplicate(frame: pl.DataFrame, valid: pl.Series, table: Table,
                labels: Mapping[int, tuple[str, str]]) -> Deduplicated:
    """De-duplicate the ``valid`` rows of ``frame`` (every row of every file of ``table`` in
    file, line order, with ``_file`` and ``_line``). ``labels`` maps each ``_file`` to its
    (path, unit), to name the kept row in messages. A row's ``_row`` (its index in its file) is
    its position less that of its file's first row."""
    key = table.key
    repeats = frame[key].is_duplicated() & valid
    if repeats.any() and not valid.all():  # a key may repeat only with quarantined rows
        rows = repeats.arg_true()
        repeats = repeats.scatter(rows, frame[key].gather(rows).is_duplicated())
    if not repeats.any():
        return Deduplicated(pl.Series(_ORD, [], dtype=pl.UInt32),
                            pl.DataFrame(schema={FILE: pl.Int32, ROW: pl.Int64}),
                            pl.DataFrame(schema={FILE: pl.Int32, **PROBLEM_SCHEMA}))
    fields = list(table.columns)
    others = [f for f in fields if f != key]
    files = list(labels)
    starts = [frame[FILE].search_sorted(f, side="left") for f in files]
    repeated = frame.filter(repeats)
    repeated = repeated.with_columns(
        repeats.arg_true().alias(_ORD)
    ).with_columns(
        pl.col(_ORD).min().over(fields).alias("_first"),
        (pl.col(_ORD) - pl.col(FILE).replace_strict(files, starts, return_dtype=pl.Int64))
        .alias(ROW),
    )
    stamp = ["updated_at"] if "updated_at" in fields else []
    kept = (
        repeated.filter(pl.col(_ORD) == pl.col("_first"))
        .sort([key, *stamp, _ORD], nulls_last=False)
        .group_by(key, maintain_order=True).last()
        .select(key, pl.col(_ORD).alias("_kept"), pl.col(FILE).alias("_kept_file"),
                pl.col("_line").alias("_kept_line"),
                *[pl.col(f).alias(f"{f}__kept") for f in others])
    )
    repeated = repeated.join(kept, on=key)
    merged = repeated.filter((pl.col("_first") == pl.col("_kept"))
                             & (pl.col(_ORD) != pl.col("_kept")))
    losers = repeated.filter(pl.col("_first") != pl.col("_kept"))
    paths = [path for path, _ in labels.values()]
    units = [unit for _, unit in labels.values()]
    differing = pl.concat_str(
        [pl.when(pl.col(f).ne_missing(pl.col(f"{f}__kept"))).then(pl.lit(f)) for f in others],
        separator=", ", ignore_nulls=True,
    )
    where = (
        pl.col("_kept_file").replace_strict(files, units, return_dtype=pl.Utf8) + " "
        + pl.col("_kept_line").cast(pl.Utf8)
        + pl.when(pl.col("_kept_file") != pl.col(FILE))
        .then(" of " + pl.col("_kept_file").replace_strict(files, paths, return_dtype=pl.Utf8))
        .otherwise(pl.lit(""))
    )
    why = "the latest updated_at wins, then the later row" if stamp else "the later row wins"
    problems = losers.select(
        pl.col(FILE), pl.col(ROW), pl.lit(key).alias("field"),
        pl.lit("duplicate_conflict").alias("rule"),
        (pl.lit("is repeated with different ") + differing + " on " + where
         + f", which was kept ({why})").alias("detail"),
        pl.lit(RANK_DUPLICATE, pl.Int32).alias("rank"),
    )
    return Deduplicated(
        dropped=pl.concat([merged[_ORD], losers[_ORD]]),
        merged=merged.select(FILE, ROW),
        problems=problems,
    )
