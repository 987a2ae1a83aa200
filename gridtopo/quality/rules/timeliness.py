"""Timeliness rule (时效性): records not updated within ``max_age_days`` of the audit's clock."""

from __future__ import annotations

import polars as pl

from gridtopo.clock import naive_utc
from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import findings, json


def record_stale(f: Facts) -> pl.DataFrame:
    """Customers, areas and transformers not updated within ``max_age_days`` of ``now``."""
    days = f.config.threshold("record_stale", "max_age_days")
    now = naive_utc(f.config.now)
    age = (pl.lit(now) - pl.col("updated_at")).dt.total_days()

    def stale(frame: pl.DataFrame, kind: str, key: str, feeder: str | None) -> pl.DataFrame:
        rows = frame.filter(age > days).with_columns(age.alias("age_days"))
        return findings(
            rows, "record_stale", kind, key,
            pl.format("{} {} last updated {} ({} days ago)", pl.lit(kind), key,
                      pl.col("updated_at").dt.date(), "age_days"),
            json(updated_at=pl.col("updated_at").dt.to_string("%Y-%m-%d %H:%M:%S"),
                 age_days=pl.col("age_days")), feeder=feeder,
        )

    areas = f.model.areas.join(
        f.transformers.drop_nulls("area_code").select(
            "area_code", pl.col("linked_feeder").alias("feeder_id"), "lon", "lat"),
        on="area_code", how="left")
    return pl.concat([
        stale(f.customers, "customer", "customer_id", "feeder_id"),
        stale(areas, "area", "area_code", "feeder_id"),
        stale(f.transformers, "transformer", "transformer_id", "linked_feeder"),
    ])
