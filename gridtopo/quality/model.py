"""The stored model as polars frames, read once per audit with set-based queries.

Only the columns rules need are read (never personal data); coordinates come out of the
geometries as lon/lat floats and timestamps as naive UTC datetimes on both stores, so every
rule is one columnar expression over these frames.

PostgreSQL streams each query with ``COPY … TO STDOUT``; SQLite builds text blocks that polars
parses, read by two threads (:func:`gridtopo.db.read.frames.read_table`).

>>> model = load_model(engine)
>>> model.customers.columns[:3], model.customers.height == model.customer_links.height + 5
(['customer_id', 'area_code', 'feeder_name'], True)
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine, text

from gridtopo.db.read.frames import read_frame, read_table
from gridtopo.db.runs import model_run
from gridtopo.privacy import PERSONAL_FIELDS
from gridtopo.quality.errors import EmptyModelError

S, F = pl.Utf8, pl.Float64
Schema = dict[str, pl.DataType | type[pl.DataType]]
READERS = 2
UPDATED = "{updated}"
"""Placeholder for the backend's expression of ``updated_at`` as ``YYYY-MM-DD HH:MM:SS``."""
POINT = "{point}"
"""Placeholder for a point geometry read as ``lon`` and ``lat``. On SQLite the two doubles are
taken straight from the SpatiaLite blob (bytes 7–22, the MBR's minimum corner, which is the
point) as hex, four times cheaper than ``ST_X``/``ST_Y`` printed as text."""

_TABLES: dict[str, tuple[str, list[tuple[str, str, pl.DataType | type[pl.DataType]]], str]] = {
    "stations": ("stations", [("station_id", "station_id", S),
                              ("station_name", "station_name", S),
                              (POINT, "lon", F)], ""),
    "feeders": ("feeders", [("feeder_id", "feeder_id", S), ("feeder_name", "feeder_name", S),
                            ("station_id", "station_id", S)], ""),
    "transformers": ("transformers", [
        ("transformer_id", "transformer_id", S), ("transformer_name", "transformer_name", S),
        ("feeder_id", "feeder_id", S), ("node", "node", S), ("capacity_kva", "capacity_kva", F),
        ("marketing_area_code", "marketing_area_code", S), ("status", "status", S),
        (POINT, "lon", F), (UPDATED, "updated_at", S)], ""),
    "areas": ("transformer_areas", [
        ("area_code", "area_code", S), ("area_name", "area_name", S),
        ("feeder_name", "feeder_name", S), ("station_name", "station_name", S),
        ("capacity_kva", "capacity_kva", F), ("pms_transformer_id", "pms_transformer_id", S),
        (UPDATED, "updated_at", S)], ""),
    "customers": ("customers", [
        ("customer_id", "customer_id", S), ("area_code", "area_code", S),
        ("feeder_name", "feeder_name", S), ("station_name", "station_name", S),
        ("meter_id", "meter_id", S), ("contract_kva", "contract_kva", F),
        ("status", "status", S), (POINT, "lon", F), (UPDATED, "updated_at", S)], ""),
}
CUSTOMER_STATUS = pl.Enum(["active", "closed"])
SET_ASIDE_SQL = (  # a personal field's source value stays in the quarantine, out of findings
    "SELECT f.table_name, q.entity_id, q.field, "
    "CASE WHEN q.field IN ({personal}) THEN NULL ELSE q.value END, q.rule, f.path, q.line, "
    "e.feeder_id "
    "FROM quarantined_rows q JOIN ingest_files f ON f.id = q.file_id "
    "LEFT JOIN edges e ON f.table_name = 'edges' AND e.edge_id = q.entity_id "
    "WHERE q.run_id = {run} AND q.row_kept AND q.entity_id IS NOT NULL "
    "ORDER BY f.path, q.line, q.id"
)
SET_ASIDE_SCHEMA: Schema = {"table": S, "entity_id": S, "field": S, "value": S, "rule": S,
                            "path": S, "line": pl.Int64, "edge_feeder": S}
LINK_KINDS = {"customer_links": "customer_transformer", "area_links": "area_transformer",
              "transformer_links": "transformer_feeder", "feeder_links": "feeder_station"}


@dataclass(frozen=True)
class Model:
    """The frames of one stored model; ``*_links`` are ``from_id → to_id`` of one link kind."""

    stations: pl.DataFrame
    feeders: pl.DataFrame
    transformers: pl.DataFrame
    areas: pl.DataFrame
    customers: pl.DataFrame
    customer_links: pl.DataFrame
    area_links: pl.DataFrame
    transformer_links: pl.DataFrame
    feeder_links: pl.DataFrame
    ingest_run_id: int | None
    set_aside: pl.DataFrame
    """The fields the model's ingest run set aside in rows it kept (loaded without them):
    table, entity_id, field, value (null for personal data), rule, path, line, and an edge's
    feeder_id."""

    def chain(self) -> pl.DataFrame:
        """Per customer (in ``customers`` order): area_code and the decided transformer_id,
        feeder_id and station_id (null where the chain breaks)."""
        return (
            self.customers.select("customer_id", "area_code")
            .join(self.customer_links.rename({"from_id": "customer_id",
                                              "to_id": "transformer_id"}),
                  on="customer_id", how="left", maintain_order="left")
            .join(self.transformer_links.rename({"from_id": "transformer_id",
                                                 "to_id": "feeder_id"}),
                  on="transformer_id", how="left", maintain_order="left")
            .join(self.feeder_links.rename({"from_id": "feeder_id", "to_id": "station_id"}),
                  on="feeder_id", how="left", maintain_order="left")
        )


def _little_endian_blobs(engine: Engine, table: str) -> bool:
    """Whether ``table``'s geometries are little-endian SpatiaLite blobs (the usual case)."""
    with engine.connect() as conn:
        head = conn.execute(text(f"SELECT hex(substr(geom, 1, 2)) FROM {table} "
                                 "WHERE geom IS NOT NULL LIMIT 1")).scalar()
    return head in (None, "0001")


def _read(engine: Engine, table: str, columns: list[tuple[str, str, pl.DataType |
                                                        type[pl.DataType]]],
          where: str = "") -> pl.DataFrame:
    """``SELECT columns FROM table [WHERE where]`` as a frame, the fast way per backend."""
    postgres = engine.dialect.name == "postgresql"
    hex_point = not postgres and any(e == POINT for e, _, _ in columns) and \
        _little_endian_blobs(engine, table)
    updated = ("to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')" if postgres
               else "substr(updated_at, 1, 19)")
    expanded: list[tuple[str, str, pl.DataType | type[pl.DataType]]] = []
    for expr, name, dtype in columns:
        if expr == POINT and hex_point:
            expanded.append(("hex(substr(geom, 7, 16))", "_xy", S))
        elif expr == POINT:
            expanded += [("ST_X(geom)", "lon", F), ("ST_Y(geom)", "lat", F)]
        else:
            expanded.append((expr.replace(UPDATED, updated), name, dtype))
    schema: Schema = {name: dtype for _, name, dtype in expanded}
    frame = read_table(engine, table, schema, exprs=[e for e, _, _ in expanded], where=where,
                       readers=READERS)
    if not hex_point:
        return frame
    xy = pl.col("_xy").str.decode("hex")
    return frame.with_columns(
        xy.bin.slice(0, 8).bin.reinterpret(dtype=pl.Float64, endianness="little").alias("lon"),
        xy.bin.slice(8, 8).bin.reinterpret(dtype=pl.Float64, endianness="little").alias("lat"),
    ).select(c for e, n, _ in columns for c in (("lon", "lat") if e == POINT else (n,)))


def load_model(engine: Engine) -> Model:
    """Read the model of ``engine``; :class:`EmptyModelError` when nothing was ingested."""
    run = model_run(engine)
    if run is None:
        raise EmptyModelError(
            "the database holds no ingested model: run `gridtopo ingest SOURCE` first")
    frames: dict[str, pl.DataFrame] = {}
    for name, (table, columns, where) in _TABLES.items():
        frame = _read(engine, table, columns, where)
        if "updated_at" in frame.columns:
            frame = frame.with_columns(
                pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False))
        if name == "customers":  # 14 M rows: few distinct values, stored as codes
            frame = frame.with_columns(pl.col("status").cast(CUSTOMER_STATUS),
                                       pl.col("station_name").cast(pl.Categorical))
        frames[name] = frame
    if all(frames[t].is_empty() for t in ("customers", "transformers", "feeders")):
        raise EmptyModelError("the last ingest loaded no customers, transformers or feeders: "
                              "nothing to audit")
    chain: list[tuple[str, str, pl.DataType | type[pl.DataType]]] = [
        ("customer_id", "from_id", S), ("transformer_id", "to_id", S)]
    links = {"customer_links": _read(engine, "customers", chain, "transformer_id IS NOT NULL")}
    with engine.connect() as conn:  # the other kinds are small: through the (kind, …) index
        for name, kind in LINK_KINDS.items():
            if name not in links:
                links[name] = read_frame(conn, "SELECT from_id, to_id FROM links WHERE "
                                         f"kind = '{kind}'", {"from_id": S, "to_id": S})
    with engine.connect() as conn:
        set_aside = read_frame(conn, SET_ASIDE_SQL.format(
            run=int(run), personal=", ".join(f"'{f}'" for f in PERSONAL_FIELDS)),
            SET_ASIDE_SCHEMA)
    return Model(**frames, **links, ingest_run_id=int(run), set_aside=set_aside)
