"""Accuracy rules (准确性): positions and loads that are implausible, though every id links.

* coordinates offset like GCJ-02 (web-map) coordinates: farther than ``min_m`` from their
  reference and ``gain`` times closer once read as GCJ-02 — the fix converts them to WGS 84;
* customers farther than ``max_m`` from their transformer (or their area's customers);
* transformers whose active customers' contract kVA exceed ``max_ratio`` × their rating;
* in-service transformers without customers.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from gridtopo.geo import distance_m
from gridtopo.ingest.crs import to_wgs84
from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import findings, json


def _gcj02_offset(points: pl.DataFrame, rule: str, f: Facts) -> pl.DataFrame:
    """Rows of ``points`` (lon, lat, r_lon, r_lat: a reference position) that lie farther
    than ``min_m`` from the reference and come ``gain`` times closer once read as GCJ-02."""
    min_m, gain = f.config.threshold(rule, "min_m"), f.config.threshold(rule, "gain")
    far = points.drop_nulls(["lon", "lat", "r_lon", "r_lat"]).with_columns(
        distance_m(pl.col("lon"), pl.col("lat"), pl.col("r_lon"), pl.col("r_lat"))
        .alias("d_raw")).filter(pl.col("d_raw") > min_m)
    lon, lat = to_wgs84(far["lon"].to_numpy(), far["lat"].to_numpy(), "gcj02")
    return far.with_columns(pl.Series("w_lon", np.asarray(lon)),
                            pl.Series("w_lat", np.asarray(lat))).with_columns(
        distance_m(pl.col("w_lon"), pl.col("w_lat"), pl.col("r_lon"), pl.col("r_lat"))
        .alias("d_fixed")).filter(pl.col("d_fixed") < gain * pl.col("d_raw"))


def _coordinate_fix(table: str, key: str) -> pl.Expr:
    return json(action=pl.lit("edit"), table=pl.lit(table), field=pl.lit("lon|lat"),
                value=pl.format("{}|{}", pl.col("w_lon").round(6), pl.col("w_lat").round(6)),
                text=pl.format("convert the coordinates of {} from GCJ-02 to WGS 84: ({}, {}), "
                               "{} m from its reference", key, pl.col("w_lon").round(6),
                               pl.col("w_lat").round(6), pl.col("d_fixed").round(0)))


def customer_offset_gcj02(f: Facts) -> pl.DataFrame:
    """Customers offset from their area's median position like GCJ-02 coordinates are."""
    points = f.customers.select("customer_id", "area_code", "feeder_id", "lon", "lat").join(
        f.area_centres.rename({"c_lon": "r_lon", "c_lat": "r_lat"}), on="area_code")
    rows = _gcj02_offset(points, "customer_offset_gcj02", f)
    return findings(
        rows, "customer_offset_gcj02", "customer", "customer_id",
        pl.format("customer {} is {} m from its area's customers; as GCJ-02 it would be {} m",
                  "customer_id", pl.col("d_raw").round(0), pl.col("d_fixed").round(0)),
        json(distance_m=pl.col("d_raw").round(1), as_gcj02_m=pl.col("d_fixed").round(1)),
        _coordinate_fix("customers", "customer_id"),
    )


def transformer_offset_gcj02(f: Facts) -> pl.DataFrame:
    """Transformers offset from their area's customers like GCJ-02 coordinates are."""
    points = f.transformers.join(
        f.area_centres.rename({"c_lon": "r_lon", "c_lat": "r_lat"}), on="area_code",
        how="inner")
    rows = _gcj02_offset(points, "transformer_offset_gcj02", f)
    return findings(
        rows, "transformer_offset_gcj02", "transformer", "transformer_id",
        pl.format("transformer {} is {} m from its customers; as GCJ-02 it would be {} m",
                  "transformer_id", pl.col("d_raw").round(0), pl.col("d_fixed").round(0)),
        json(distance_m=pl.col("d_raw").round(1), as_gcj02_m=pl.col("d_fixed").round(1)),
        _coordinate_fix("transformers", "transformer_id"), feeder="linked_feeder",
    )


def customer_far_from_transformer(f: Facts) -> pl.DataFrame:
    """Customers farther than ``max_m`` from their transformer (from their area's median
    position when they have no transformer); the fix moves them to that median position — the
    link is confirmed by ids, the coordinates are suspect."""
    max_m = f.config.threshold("customer_far_from_transformer", "max_m")
    rows = (
        f.customers.select("customer_id", "area_code", "lon", "lat", "transformer_id",
                           "feeder_id")
        .join(f.model.transformers.select("transformer_id", pl.col("lon").alias("t_lon"),
                                          pl.col("lat").alias("t_lat")),
              on="transformer_id", how="left")
        .join(f.area_centres, on="area_code", how="left")
        .filter(distance_m(pl.col("lon"), pl.col("lat"), pl.coalesce("t_lon", "c_lon"),
                           pl.coalesce("t_lat", "c_lat")) > max_m)
        .with_columns(pl.when(pl.col("t_lon").is_not_null())
                      .then(pl.format("its transformer {}", "transformer_id"))
                      .otherwise(pl.format("its area {}'s customers", "area_code"))
                      .alias("reference"),
                      distance_m(pl.col("lon"), pl.col("lat"),
                                 pl.coalesce("t_lon", "c_lon"), pl.coalesce("t_lat", "c_lat"))
                      .alias("d"))
    )
    return findings(
        rows, "customer_far_from_transformer", "customer", "customer_id",
        pl.format("customer {} is {} m from {}", "customer_id", pl.col("d").round(0),
                  "reference"),
        json(distance_m=pl.col("d").round(1), transformer_id=pl.col("transformer_id")),
        json(action=pl.lit("edit"), table=pl.lit("customers"), field=pl.lit("lon|lat"),
             value=pl.format("{}|{}", pl.col("c_lon").round(6), pl.col("c_lat").round(6)),
             text=pl.format("check the coordinates of customer {}: its area's customers are "
                            "around ({}, {})", "customer_id", pl.col("c_lon").round(6),
                            pl.col("c_lat").round(6))),
    )


def transformer_overloaded(f: Facts) -> pl.DataFrame:
    """Transformers whose active customers' contract kVA exceed ``max_ratio`` × rating."""
    ratio = f.config.threshold("transformer_overloaded", "max_ratio")
    rows = f.transformers.join(f.load, on="transformer_id").filter(
        pl.col("contract_kva") > ratio * pl.col("capacity_kva"))
    return findings(
        rows, "transformer_overloaded", "transformer", "transformer_id",
        pl.format("transformer {}: {} kVA contracted on a {} kVA rating", "transformer_id",
                  "contract_kva", "capacity_kva"),
        json(contract_kva=pl.col("contract_kva"), capacity_kva=pl.col("capacity_kva"),
             active_customers=pl.col("active")), feeder="linked_feeder",
    )


def transformer_no_customers(f: Facts) -> pl.DataFrame:
    """In-service transformers to which no customer is linked."""
    rows = f.transformers.filter(pl.col("status") == "in_service").join(
        f.chain.select("transformer_id").drop_nulls().unique(), on="transformer_id",
        how="anti")
    return findings(
        rows, "transformer_no_customers", "transformer", "transformer_id",
        pl.format("transformer {} has no customers", "transformer_id"),
        json(area_code=pl.col("area_code")), feeder="linked_feeder",
    )
