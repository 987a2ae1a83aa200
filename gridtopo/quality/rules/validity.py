"""Validity and uniqueness rules: values outside their domain, and ids that must be unique.

* ``coordinates_outside_territory``: customers, transformers and stations outside the
  configured territory box (``territory``, Guangdong by default);
* ``meter_id_duplicate``: one meter asset number recorded on several customers.
"""

from __future__ import annotations

import polars as pl

from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import findings, json


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

