"""Replace the stored model with a new one, in the caller's transaction.

The source tables are emptied and refilled in bulk (:mod:`gridtopo.db.bulk`), then the links of
the reconciliation are written. Before that, the former version of every changed or removed row
of a versioned table is archived to its history twin (:mod:`gridtopo.db.versioning`), so that
snapshots cost only what changed. Indexes, triggers and spatial indexes are set aside during the
load and rebuilt after it (:func:`~gridtopo.db.bulk.bulk_load_mode`), which is far faster than
maintaining them row by row. Everything happens on one connection in
one transaction, so a failure anywhere leaves the previous model as it was.

Canonical frames map onto tables by column name; besides that:

* ``lon``/``lat`` become the ``geom`` point, an edge's WKT ``geometry`` its ``geom`` line;
* ``_file`` (index into the run's files) becomes ``source_file_id``, ``_line`` ``source_line``;
* customers' personal fields go to ``customer_personal``;
* recorded switching changes that win over the export are kept in ``edges``
  (:func:`~gridtopo.db.switching.switching_overrides`);
* ``nodes`` are derived: every node an edge, transformer or feeder names, with the one feeder its
  edges belong to and a position from the edge geometry (else the transformer's position).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl
from geoalchemy2 import Geometry
from sqlalchemy import Connection, text

from gridtopo.db import versioning
from gridtopo.db.bulk import ProgressFn, bulk_insert, bulk_load_mode
from gridtopo.db.models import VERSIONED_KEYS, Base, CustomerPersonal
from gridtopo.db.switching import switching_overrides
from gridtopo.privacy import PERSONAL_FIELDS
from gridtopo.progress import ProgressCallback
from gridtopo.reconcile.links import Reconciliation, node_feeders

LOAD_ORDER = ("stations", "feeders", "edges", "transformers", "transformer_areas", "customers")
"""Source tables in the order they are loaded (and emptied in reverse)."""
DERIVED = ("nodes", "customer_personal", "links")
_GEOMETRIES = {name: column for name in (*LOAD_ORDER, *DERIVED)
               for column in Base.metadata.tables[name].columns
               if isinstance(column.type, Geometry)}
SPATIAL = {name: column.name for name, column in _GEOMETRIES.items()}
"""Tables with a geometry column, and its name."""
SPATIALLY_INDEXED = {name: column.name for name, column in _GEOMETRIES.items()
                     if isinstance(column.type, Geometry) and column.type.spatial_index}
"""The subset whose geometry has a spatial index (rebuilt after the load)."""
DEFAULTS: dict[str, dict[str, object]] = {
    "stations": {"in_service": True},
    "feeders": {"in_service": True},
    "edges": {"in_service": True, "normal_open": False},
    "transformers": {"status": "in_service"},
    "customers": {"status": "active"},
}

_FIRST_POINT = r"^\s*LINESTRING\s*\(\s*([-+\d.eE]+)\s+([-+\d.eE]+)"
_LAST_POINT = r"([-+\d.eE]+)\s+([-+\d.eE]+)\s*\)\s*$"


def table_frame(name: str, frame: pl.DataFrame, file_ids: Sequence[int]) -> pl.DataFrame:
    """The rows of canonical table ``name`` shaped as the columns of its database table."""
    columns = Base.metadata.tables[name].columns.keys()
    exprs: list[pl.Expr] = []
    for column in columns:
        if column == "geom":
            if "geometry" in frame.columns:
                exprs.append(pl.col("geometry").alias("geom"))
            elif {"lon", "lat"} <= set(frame.columns):
                exprs.extend([pl.col("lon"), pl.col("lat")])
        elif column == "source_file_id" and "_file" in frame.columns:
            exprs.append(
                pl.col("_file").replace_strict(list(range(len(file_ids))), list(file_ids),
                                               return_dtype=pl.Int64).alias(column)
            )
        elif column == "source_line" and "_line" in frame.columns:
            exprs.append(pl.col("_line").alias(column))
        elif column in frame.columns:
            default = DEFAULTS.get(name, {}).get(column)
            expr = pl.col(column)
            exprs.append((expr.fill_null(default) if default is not None else expr).alias(column))
        elif column in DEFAULTS.get(name, {}):
            exprs.append(pl.lit(DEFAULTS[name][column]).alias(column))
    return frame.select(exprs)


def derive_nodes(tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Connectivity nodes with their feeder and a position, from edges, transformers, feeders."""
    edges = tables.get("edges", pl.DataFrame(schema={"from_node": pl.Utf8, "to_node": pl.Utf8,
                                                     "feeder_id": pl.Utf8,
                                                     "geometry": pl.Utf8}))
    feeders = tables.get("feeders", pl.DataFrame(schema={"feeder_id": pl.Utf8,
                                                         "source_node": pl.Utf8}))
    transformers = tables.get("transformers", pl.DataFrame(
        schema={"node": pl.Utf8, "lon": pl.Float64, "lat": pl.Float64}))
    geometry = edges["geometry"] if "geometry" in edges.columns else None
    ends = edges.select("from_node", "to_node").with_columns(
        (geometry if geometry is not None else pl.lit(None, pl.Utf8)).alias("g")
    )
    positioned = pl.concat([
        ends.select(pl.col("from_node").alias("node_id"),
                    pl.col("g").str.extract(_FIRST_POINT, 1).cast(pl.Float64).alias("lon"),
                    pl.col("g").str.extract(_FIRST_POINT, 2).cast(pl.Float64).alias("lat")),
        ends.select(pl.col("to_node").alias("node_id"),
                    pl.col("g").str.extract(_LAST_POINT, 1).cast(pl.Float64).alias("lon"),
                    pl.col("g").str.extract(_LAST_POINT, 2).cast(pl.Float64).alias("lat")),
        transformers.select(pl.col("node").alias("node_id"), "lon", "lat"),
        feeders.select(pl.col("source_node").alias("node_id"),
                       pl.lit(None, pl.Float64).alias("lon"),
                       pl.lit(None, pl.Float64).alias("lat")),
    ]).drop_nulls("node_id")
    located = positioned.group_by("node_id").agg(
        pl.col("lon").drop_nulls().first(), pl.col("lat").drop_nulls().first()
    )
    owners = node_feeders(edges.select("from_node", "to_node", "feeder_id"),
                          feeders.select("feeder_id", "source_node"))
    return located.join(owners.rename({"node": "node_id"}), on="node_id", how="left").select(
        "node_id", "feeder_id", "lon", "lat"
    ).sort("node_id")


def with_customer_links(customers: pl.DataFrame, customer_links: pl.DataFrame) -> pl.DataFrame:
    """``customers`` with their decided links (``transformer_id``, ``link_method``,
    ``link_confidence``; :data:`~gridtopo.reconcile.links.CUSTOMER_LINK_COLUMNS`), which
    reconciliation keeps aligned row for row with the customers.

    The customers' own columns are carried over, not copied: at 14 million rows a rebuilt frame
    would add gigabytes to the ingest's peak memory.
    """
    if not customers["customer_id"].equals(customer_links["customer_id"]):
        raise ValueError("customer links are not aligned with the customers they belong to")
    return pl.DataFrame([*customers.get_columns(),
                         *customer_links.drop("customer_id").get_columns()])


def clear_model(conn: Connection) -> None:
    """Empty every source and derived table (not the run history, decisions or findings)."""
    tables = [*reversed(LOAD_ORDER), *DERIVED]
    if conn.dialect.name == "postgresql":
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)))
    else:
        for table in ("links", "customer_personal", "nodes", *reversed(LOAD_ORDER)):
            conn.execute(text(f'DELETE FROM "{table}"'))


@dataclass(frozen=True)
class LoadResult:
    """Rows written per table, and per versioned table what was added, changed, removed."""

    written: dict[str, int]
    changes: dict[str, dict[str, int]]
    seconds: dict[str, float]

    @property
    def changed(self) -> bool:
        """Whether the model differs from the one it replaced."""
        return any(any(c.values()) for c in self.changes.values())


def model_frames(
    conn: Connection,
    tables: Mapping[str, pl.DataFrame],
    file_ids: Sequence[int],
    reconciliation: Reconciliation,
    run_id: int,
) -> dict[str, pl.DataFrame]:
    """Every model table's rows, database-shaped, for ``tables`` and ``reconciliation``: what
    :func:`replace_model` writes whole and :func:`gridtopo.db.delta.write_changes` compares.
    The recorded switching changes that win over this export are applied to ``edges`` here,
    so both ways of writing keep them (runs in the load's transaction)."""
    frames: dict[str, pl.DataFrame] = {}
    for name in LOAD_ORDER:
        if name == "customers" and name in tables:
            frames[name] = table_frame(
                name, with_customer_links(tables[name], reconciliation.customer_links), file_ids)
        elif name in tables:
            frames[name] = table_frame(name, tables[name], file_ids)
    if "customers" in tables and any(f in tables["customers"].columns for f in PERSONAL_FIELDS):
        personal_columns = CustomerPersonal.__table__.columns.keys()
        frames["customer_personal"] = tables["customers"].select(
            [c for c in personal_columns if c in tables["customers"].columns]
        )
    frames["nodes"] = derive_nodes(tables)
    frames["links"] = reconciliation.links.with_columns(pl.lit(run_id).alias("run_id"))
    for name in VERSIONED_KEYS:
        frames.setdefault(name, table_frame(
            name, pl.DataFrame(schema=dict.fromkeys(VERSIONED_KEYS[name], pl.Utf8)), file_ids
        ))
    frames["edges"] = switching_overrides(conn, frames["edges"], run_id)
    return frames


def insert_rows(conn: Connection, name: str, frame: pl.DataFrame,
                progress: ProgressFn | None = None) -> int:
    """Insert database-shaped rows of table ``name`` (points and lines converted), key order."""
    geometry = ("geom",) if name in SPATIAL and "geom" in frame.columns else ()
    points = {"geom": ("lon", "lat")} if "lon" in frame.columns else {}
    key = list(VERSIONED_KEYS.get(name, ())) or [
        c.name for c in Base.metadata.tables[name].primary_key.columns
    ]
    return bulk_insert(conn, name, frame, geometry=geometry, points=points,
                       order_by=[c for c in key if c in frame.columns], progress=progress)


def replace_model(
    conn: Connection,
    tables: Mapping[str, pl.DataFrame],
    file_ids: Sequence[int],
    reconciliation: Reconciliation,
    run_id: int,
    progress: ProgressCallback | None = None,
) -> LoadResult:
    """Replace the model with ``tables`` and the links of ``reconciliation``, archiving what
    changed."""
    return replace_frames(conn, model_frames(conn, tables, file_ids, reconciliation, run_id),
                          run_id, progress)


def replace_frames(conn: Connection, frames: dict[str, pl.DataFrame], run_id: int,
                   progress: ProgressCallback | None = None) -> LoadResult:
    """Replace the model with the database-shaped ``frames`` (:func:`model_frames`)."""
    changes: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for name in VERSIONED_KEYS:
        if progress:
            progress("compare versions", len(changes), len(VERSIONED_KEYS))
        version_plan = versioning.plan(conn, name, frames[name], run_id)
        versioning.archive(conn, name, version_plan.archive_keys, run_id)
        frames[name] = version_plan.rows
        changes[name] = version_plan.counts
    seconds["compare versions"] = time.perf_counter() - started
    written: dict[str, int] = {}
    with bulk_load_mode(conn, [*LOAD_ORDER, *DERIVED], SPATIALLY_INDEXED):
        started = time.perf_counter()
        clear_model(conn)
        seconds["clear"] = time.perf_counter() - started
        for name, frame in frames.items():
            started = time.perf_counter()
            done = 0

            def advance(rows: int, name: str = name, total: int = frame.height) -> None:
                nonlocal done
                done += rows
                if progress:
                    progress(f"load {name}", done, total)

            written[name] = insert_rows(conn, name, frame, advance)
            seconds[f"insert {name}"] = time.perf_counter() - started
        if progress:
            progress("indexes", 0, 1)
        started = time.perf_counter()
    seconds["indexes"] = time.perf_counter() - started
    if progress:
        progress("indexes", 1, 1)
    return LoadResult(written=written, changes=changes,
                      seconds={k: round(v, 3) for k, v in seconds.items()})
