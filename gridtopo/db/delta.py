"""Write only what changed: the model brought to new rows by deleting and inserting the
difference, instead of emptying and refilling every table (:func:`~gridtopo.db.load.replace_model`).

The versioned tables are compared by content as before (:func:`gridtopo.db.versioning.plan`,
the stored ``row_hash``): the former version of every changed or removed row is archived to
its history twin, the row deleted, and the new and changed rows inserted, with the indexes
maintained (a change is a small fraction of the rows, so rebuilding indexes would cost more).
Two tables are not versioned and are compared with what the previous run kept
(:mod:`gridtopo.db.sourcestate`): ``nodes`` whole, and ``customer_personal`` by a hash of the
personal fields, so that the personal data itself never leaves the database. A customer row
rewritten for another reason keeps its personal row (copied aside and put back: PostgreSQL
cascades the delete to it).

The result is the same model :func:`~gridtopo.db.load.replace_model` would write, row for row
(only ``valid_from_run`` of unchanged rows and ``run_id`` of unchanged links keep the run they
date from, as they do there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, text

from gridtopo.db import versioning
from gridtopo.db.load import LoadResult, insert_rows
from gridtopo.db.models import VERSIONED_KEYS
from gridtopo.privacy import PERSONAL_FIELDS
from gridtopo.progress import ProgressCallback

PERSONAL_HASH = "personal_hash"
"""Column of :func:`personal_hashes`."""


def personal_hashes(personal: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, personal_hash`` of ``customer_personal``-shaped rows: a fingerprint that
    says whether a customer's personal data changed without keeping it outside the database.

    >>> rows = pl.DataFrame({"customer_id": ["C1"], "customer_name": ["张三"],
    ...                      "address": [None], "phone": ["13800000000"]})
    >>> personal_hashes(rows).columns
    ['customer_id', 'personal_hash']
    """
    present = [f for f in PERSONAL_FIELDS if f in personal.columns]
    filled = personal.with_columns(pl.lit(None, pl.Utf8).alias(f)
                                   for f in PERSONAL_FIELDS if f not in present)
    return filled.select(
        "customer_id",
        filled.select(PERSONAL_FIELDS).hash_rows(seed=versioning.HASH_SEED)
        .reinterpret(signed=True).alias(PERSONAL_HASH),
    )


def _delete(conn: Connection, table: str, keys: pl.DataFrame) -> None:
    if keys.is_empty():
        return
    columns = ", ".join(f'"{k}"' for k in keys.columns)
    with versioning.key_table(conn, keys) as temporary:
        conn.execute(text(f'DELETE FROM "{table}" WHERE ({columns}) IN '
                          f'(SELECT {columns} FROM "{temporary}")'))


def _content_diff(new: pl.DataFrame, old: pl.DataFrame, key: str
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of ``new`` that differ from or are absent in ``old`` (by every column), and the
    keys of ``old`` to delete (changed or gone)."""
    columns = sorted(new.columns)
    hashed = new.select(key, new.select(columns).hash_rows(seed=versioning.HASH_SEED).alias("h"))
    before = old.select(key, old.select(columns).hash_rows(seed=versioning.HASH_SEED).alias("h"))
    changed = hashed.join(before, on=[key, "h"], how="anti")
    stale = before.join(hashed, on=[key, "h"], how="anti").select(key)
    return new.join(changed.select(key), on=key, how="semi"), stale


@dataclass(frozen=True)
class DeltaResult:
    """What :func:`write_changes` did, and the personal fingerprints now stored."""

    load: LoadResult
    personal: pl.DataFrame


def write_changes(
    conn: Connection,
    frames: dict[str, pl.DataFrame],
    run_id: int,
    kept_nodes: pl.DataFrame,
    kept_personal: pl.DataFrame,
    progress: ProgressCallback | None = None,
) -> DeltaResult:
    """Bring the stored model to ``frames`` (:func:`~gridtopo.db.load.model_frames`) writing
    only the difference. ``frames["customer_personal"]`` holds the customers whose personal
    data is known this run (all of a full export, those of a change file); ``kept_nodes`` and
    ``kept_personal`` are what the previous run stored (:mod:`gridtopo.db.sourcestate`)."""
    changes: dict[str, dict[str, int]] = {}
    written: dict[str, int] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    plans: dict[str, versioning.VersionPlan] = {}
    for name in VERSIONED_KEYS:
        if progress:
            progress("compare versions", len(plans), len(VERSIONED_KEYS))
        plans[name] = versioning.plan(conn, name, frames[name], run_id)
        changes[name] = plans[name].counts
    seconds["compare versions"] = time.perf_counter() - started

    started = time.perf_counter()
    personal = personal_hashes(frames["customer_personal"])
    new_personal = personal.join(kept_personal, on=["customer_id", PERSONAL_HASH], how="anti")
    customers = plans["customers"]
    gone = customers.archive_keys
    rewritten = gone.join(customers.rows.select("customer_id"), on="customer_id", how="semi")
    preserve = rewritten.join(new_personal, on="customer_id", how="anti")
    conn.execute(text('DROP TABLE IF EXISTS "_gridtopo_personal"'))
    with versioning.key_table(conn, preserve) as temporary:
        conn.execute(text('CREATE TEMPORARY TABLE "_gridtopo_personal" AS SELECT p.* FROM '
                          f'customer_personal p JOIN "{temporary}" k '
                          'ON p.customer_id = k.customer_id'))
    _delete(conn, "customer_personal",
            pl.concat([gone, new_personal.select("customer_id")]).unique())
    seconds["personal aside"] = time.perf_counter() - started

    for name, version_plan in plans.items():
        started = time.perf_counter()
        versioning.archive(conn, name, version_plan.archive_keys, run_id)
        _delete(conn, name, version_plan.archive_keys)
        fresh = version_plan.rows.filter(pl.col("valid_from_run") == run_id)
        written[name] = insert_rows(conn, name, fresh)
        seconds[f"write {name}"] = time.perf_counter() - started

    started = time.perf_counter()
    written["customer_personal"] = insert_rows(
        conn, "customer_personal",
        frames["customer_personal"].join(new_personal.select("customer_id"), on="customer_id",
                                         how="semi"))
    conn.execute(text('INSERT INTO customer_personal SELECT * FROM "_gridtopo_personal"'))
    conn.execute(text('DROP TABLE "_gridtopo_personal"'))
    stored_personal = pl.concat([
        kept_personal.join(gone, on="customer_id", how="anti")
        .join(new_personal, on="customer_id", how="anti"),
        new_personal,
    ]).join(customers.rows.select("customer_id"), on="customer_id", how="semi")
    seconds["write customer_personal"] = time.perf_counter() - started

    started = time.perf_counter()
    fresh_nodes, stale_nodes = _content_diff(frames["nodes"], kept_nodes, "node_id")
    _delete(conn, "nodes", stale_nodes)
    written["nodes"] = insert_rows(conn, "nodes", fresh_nodes)
    seconds["write nodes"] = time.perf_counter() - started
    load = LoadResult(written=written, changes=changes,
                      seconds={k: round(v, 3) for k, v in seconds.items()})
    return DeltaResult(load=load, personal=stored_personal)
