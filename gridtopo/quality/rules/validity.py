"""Validity and uniqueness rules: values outside their domain, and ids that must be unique.

* ``coordinates_outside_territory``: customers, transformers and stations outside the
  configured territory box (``territory``, Guangdong by default);
* ``meter_id_duplicate``: one meter asset number recorded on several customers;
* ``field_unreadable``: a station, feeder, edge, transformer, 台区 or customer that ingest
  loaded without one of its source values, because the value could not be used. Ingest keeps
  such a row — a transformer's customers keep their chain, a customer stays in outage answers —
  and quarantines only the field (:mod:`gridtopo.ingest.unusable`); the model then holds the
  field blank, or at its default. The rule turns those field quarantines of the model's ingest
  run into one finding per entity, listing each field with its source value (none for personal
  data such as a phone number) and the rule it broke, e.g. ``transformer PB-0001051: source
  value set aside as unusable — capacity_kva '-400' (out_of_range)``.
"""

from __future__ import annotations

import polars as pl

from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import FINDING_SCHEMA, findings, json


def coordinates_outside_territory(f: Facts) -> pl.DataFrame:
    """Customers, transformers and stations located outside the territory box."""
    x0, y0, x1, y1 = f.config.territory

    def outside(frame: pl.DataFrame, kind: str, key: str, feeder: str | None) -> pl.DataFrame:
        rows = frame.drop_nulls(["lon", "lat"]).filter(
            ~pl.col("lon").is_between(x0, x1) | ~pl.col("lat").is_between(y0, y1))
        return findings(rows, "coordinates_outside_territory", kind, key,
                        pl.format("{} {} at ({}, {}) is outside the territory", pl.lit(kind),
                                  key, "lon", "lat"),
                        json(lon=pl.col("lon"), lat=pl.col("lat")), feeder=feeder)

    return pl.concat([
        outside(f.customers, "customer", "customer_id", "feeder_id"),
        outside(f.transformers, "transformer", "transformer_id", "linked_feeder"),
        outside(f.model.stations, "station", "station_id", None),
    ])


def meter_id_duplicate(f: Facts) -> pl.DataFrame:
    """Meter numbers recorded on more than one customer (each such customer is a finding)."""
    rows = f.customers.drop_nulls("meter_id").filter(pl.col("meter_id").is_duplicated())
    return findings(rows, "meter_id_duplicate", "customer", "customer_id",
                    pl.format("customer {}: meter {} is also recorded on another customer",
                              "customer_id", "meter_id"),
                    json(meter_id=pl.col("meter_id")))


ENTITY_TYPES = {"stations": "station", "feeders": "feeder", "edges": "edge",
                "transformers": "transformer", "transformer_areas": "area",
                "customers": "customer"}
"""Source table → entity type of its findings."""


def _places(f: Facts) -> pl.DataFrame:
    """table, entity_id → feeder_id, lon, lat that put a finding on scorecards and the map."""
    none_s, none_f = pl.lit(None, pl.Utf8), pl.lit(None, pl.Float64)
    return pl.concat([
        f.transformers.select(pl.lit("transformers").alias("table"),
                              pl.col("transformer_id").alias("entity_id"),
                              pl.col("linked_feeder").alias("feeder_id"), "lon", "lat"),
        f.model.stations.select(pl.lit("stations").alias("table"),
                                pl.col("station_id").alias("entity_id"),
                                none_s.alias("feeder_id"), "lon", "lat"),
        f.customers.select(pl.lit("customers").alias("table"),
                           pl.col("customer_id").alias("entity_id"), "feeder_id", "lon", "lat"),
        f.model.feeders.select(pl.lit("feeders").alias("table"),
                               pl.col("feeder_id").alias("entity_id"), "feeder_id",
                               none_f.alias("lon"), none_f.alias("lat")),
    ])


def field_unreadable(f: Facts) -> pl.DataFrame:
    """One finding per entity loaded without some of its source values."""
    per_entity = f.model.set_aside.group_by("table", "entity_id", maintain_order=True).agg(
        pl.col("edge_feeder").first(),
        pl.format("{} '{}' ({})", "field", pl.col("value").fill_null(""), "rule")
        .str.join("; ").alias("listed"),
        pl.struct("field", "value", "rule", "path", "line").alias("fields"),
    ).join(_places(f), on=["table", "entity_id"], how="left").with_columns(
        pl.coalesce("feeder_id", "edge_feeder").alias("feeder_id"))
    found = [
        findings(rows, "field_unreadable", ENTITY_TYPES.get(table, table), "entity_id",
                 pl.format("{} {}: source value set aside as unusable — {}",
                           pl.lit(ENTITY_TYPES.get(table, table)), "entity_id", "listed"),
                 json(fields=pl.col("fields")))
        for (table,), rows in per_entity.group_by("table", maintain_order=True)
    ]
    return pl.concat(found) if found else pl.DataFrame(schema=FINDING_SCHEMA)
