"""The stored model as polars frames, read once per audit with set-based queries.

Only the columns rules need are read (never personal data); coordinates come out of the
geometries as lon/lat floats and timestamps as naive UTC datetimes on both stores, so every
rule is one columnar expression over these frames.

>>> model = load_model(engine)  # doctest: +SKIP
>>> model.customers.columns[:3]  # doctest: +SKIP
['customer_id', 'area_code', 'feeder_name']
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, Engine, text

from gridtopo.db.bulk import read_frame
from gridtopo.quality.errors import EmptyModelError

S, F = pl.Utf8, pl.Float64


def _ts(conn: Connection, column: str) -> str:
    if conn.dialect.name == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
    return f"substr({column}, 1, 19)"


_TABLES: dict[str, tuple[str, dict[str, pl.DataType | type[pl.DataType]]]] = {
    "stations": ("SELECT station_id, station_name, ST_X(geom), ST_Y(geom) FROM stations",
                 {"station_id": S, "station_name": S, "lon": F, "lat": F}),
    "feeders": ("SELECT feeder_id, feeder_name, station_id FROM feeders",
                {"feeder_id": S, "feeder_name": S, "station_id": S}),
    "transformers": (
        "SELECT transformer_id, transformer_name, feeder_id, node, capacity_kva, "
        "marketing_area_code, status, ST_X(geom), ST_Y(geom), {updated} FROM transformers",
        {"transformer_id": S, "transformer_name": S, "feeder_id": S, "node": S,
         "capacity_kva": F, "marketing_area_code": S, "status": S, "lon": F, "lat": F,
         "updated_at": S}),
    "areas": (
        "SELECT area_code, area_name, feeder_name, station_name, capacity_kva, "
        "pms_transformer_id, {updated} FROM transformer_areas",
        {"area_code": S, "area_name": S, "feeder_name": S, "station_name": S,
         "capacity_kva": F, "pms_transformer_id": S, "updated_at": S}),
    "customers": (
        "SELECT customer_id, area_code, feeder_name, station_name, meter_id, contract_kva, "
        "status, ST_X(geom), ST_Y(geom), {updated} FROM customers",
        {"customer_id": S, "area_code": S, "feeder_name": S, "station_name": S,
         "meter_id": S, "contract_kva": F, "status": S, "lon": F, "lat": F,
         "updated_at": S}),
}
LINK_SQL = "SELECT from_id, to_id FROM links WHERE kind = '{kind}'"


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

    def chain(self) -> pl.DataFrame:
        """One row per customer with its decided transformer, feeder and station (or null)."""
        return (
            self.customers.select("customer_id", "area_code")
            .join(self.customer_links.rename({"from_id": "customer_id",
                                              "to_id": "transformer_id"}),
                  on="customer_id", how="left")
            .join(self.transformer_links.rename({"from_id": "transformer_id",
                                                 "to_id": "feeder_id"}),
                  on="transformer_id", how="left")
            .join(self.feeder_links.rename({"from_id": "feeder_id", "to_id": "station_id"}),
                  on="feeder_id", how="left")
        )


def load_model(engine: Engine) -> Model:
    """Read the model of ``engine``; :class:`EmptyModelError` when nothing was ingested."""
    frames: dict[str, pl.DataFrame] = {}
    with engine.connect() as conn:
        run = conn.execute(text(
            "SELECT max(id) FROM ingest_runs WHERE status = 'succeeded'")).scalar()
        for name, (sql, schema) in _TABLES.items():
            frame = read_frame(conn, sql.format(updated=_ts(conn, "updated_at")), schema)
            if "updated_at" in frame.columns:
                frame = frame.with_columns(
                    pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False))
            frames[name] = frame
        links = {
            kind: read_frame(conn, LINK_SQL.format(kind=kind), {"from_id": S, "to_id": S})
            for kind in ("customer_transformer", "area_transformer", "transformer_feeder",
                         "feeder_station")
        }
    if run is None or all(frames[t].is_empty() for t in ("customers", "transformers",
                                                         "feeders")):
        raise EmptyModelError(
            "the database holds no ingested model: run `gridtopo ingest SOURCE` first")
    return Model(
        **frames, customer_links=links["customer_transformer"],
        area_links=links["area_transformer"], transformer_links=links["transformer_feeder"],
        feeder_links=links["feeder_station"], ingest_run_id=int(run),
    )
