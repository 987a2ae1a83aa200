"""Shared by the partitioned-pipeline tests: a generated province split into regions, and the
comparison of two reconciliations."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gridtopo.ingest import SourceBundle
from gridtopo.reconcile.links import Reconciliation

CUSTOMERS = 12_000
PARTS = 3
MOVED = 0.1
SEED = 12
"""A seed whose province has transformers that areas of two regions compete for (seed 11 lost
them when the name grammar made more areas link on their own feeder)."""


def make_regions(root: Path) -> Path:
    """A province of :data:`CUSTOMERS` (default defects) split into :data:`PARTS` regional
    directories under ``root/regions``, :data:`MOVED` of the rows exported by a neighbour."""
    from gridtopo.synthetic import generate
    from gridtopo.synthetic.split import split_by_feeder

    generate(root / "province", CUSTOMERS, seed=SEED)
    split_by_feeder(root / "province", root / "regions", PARTS, moved=MOVED)
    return root / "regions"


def sorted_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in a canonical row order, to compare results that differ only in order."""
    return frame.sort(frame.columns, nulls_last=True)


def assert_same_reconciliation(single: Reconciliation, other: Reconciliation) -> None:
    """Links (with methods, confidences, evidence), unlinked reasons and summary equal."""
    assert other.summary == single.summary
    assert sorted_frame(other.all_links).equals(sorted_frame(single.all_links))
    assert sorted_frame(other.links).equals(sorted_frame(single.links))
    assert sorted_frame(other.unlinked).equals(sorted_frame(single.unlinked))


def accounts(bundle: SourceBundle) -> list[tuple[object, ...]]:
    """Every file's accounting, by path."""
    return sorted((f.table, f.path, f.sha256, f.rows_read, f.rows_loaded, f.rows_quarantined,
                   f.rows_merged, f.fields_quarantined) for f in bundle.files)


def quarantine_rows(bundle: SourceBundle) -> pl.DataFrame:
    """Every quarantined row with its file's path instead of its index; messages name a file
    relative to the directory read, which for a partition is its own: that prefix is
    dropped."""
    paths = [f.path for f in bundle.files]
    frames = [t.quarantine.with_columns(
        pl.col("file").replace_strict(list(range(len(paths))), paths, return_dtype=pl.Utf8),
        pl.col("message").str.replace(r"^part-\d+/", ""))
        for t in bundle.tables.values()]
    return sorted_frame(pl.concat(frames))
