"""Completeness rules (完整性): links of the 站线变户 chain that are missing, and blank
cross-system ids.

Where the model holds enough to propose the missing link, the finding carries it as a fix a
steward can accept: an unlinked customer or area gets the nearest transformer on the feeder
its 线路名称 names (an area only when that transformer is unlinked and within 300 m); a blank
PMS设备编码 or 营销台区编号 gets the id the chain decided.
"""

from __future__ import annotations

import polars as pl

from gridtopo.geo import distance_m
from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import edit_fix, findings, json, link_fix
from gridtopo.reconcile.areas import match_area_feeders


def _nearest_transformer(points: pl.DataFrame, transformers: pl.DataFrame,
                         key: str) -> pl.DataFrame:
    """Per ``key`` row of ``points`` (with feeder_id, lon, lat) the nearest transformer of the
    same feeder: key, to_id, distance_m."""
    pairs = points.select(key, "feeder_id", "lon", "lat").drop_nulls().join(
        transformers.select("transformer_id", pl.col("linked_feeder").alias("feeder_id"),
                            pl.col("lon").alias("t_lon"), pl.col("lat").alias("t_lat")),
        on="feeder_id", how="inner",
    ).with_columns(distance_m(pl.col("lon"), pl.col("lat"), pl.col("t_lon"),
                              pl.col("t_lat")).alias("distance_m"))
    return (pairs.sort("distance_m").group_by(key, maintain_order=True).first()
            .select(key, pl.col("transformer_id").alias("to_id"), "distance_m"))


def customer_area_unknown(f: Facts) -> pl.DataFrame:
    """Unlinked customers whose 台区编号 is no area: suggest the nearest transformer on the
    feeder the customer's 线路名称 names."""
    m = f.model
    bad = f.customers.filter(pl.col("transformer_id").is_null()).drop("feeder_id").join(
        m.areas.select("area_code"), on="area_code", how="anti")
    named = match_area_feeders(
        bad.select(pl.col("customer_id").alias("area_code"), "feeder_name",
                   pl.col("station_name").cast(pl.Utf8)),
        m.feeders, m.stations,
    ).rename({"area_code": "customer_id"})
    rows = bad.join(named, on="customer_id", how="left")
    near = _nearest_transformer(rows, f.transformers, "customer_id")
    rows = rows.join(near, on="customer_id", how="left")
    text = pl.format("link customer {} to transformer {}, {} m away on the same feeder",
                     "customer_id", "to_id", pl.col("distance_m").round(0).cast(pl.Int64))
    return findings(
        rows, "customer_area_unknown", "customer", "customer_id",
        pl.format("customer {}: 台区编号 {} is no transformer area", "customer_id",
                  pl.col("area_code").fill_null("(blank)")),
        json(area_code=pl.col("area_code"), feeder_name=pl.col("feeder_name")),
        pl.when(pl.col("to_id").is_not_null())
        .then(link_fix("customer_transformer", "customer_id", "to_id", text)),
    )


def area_unlinked(f: Facts) -> pl.DataFrame:
    """Areas without a decided transformer (their customers have no chain)."""
    m = f.model
    rows = m.areas.join(m.area_links.select(pl.col("from_id").alias("area_code")),
                        on="area_code", how="anti")
    customers = f.customers.group_by("area_code").agg(pl.len().alias("customers"))
    feeders = match_area_feeders(rows, m.feeders, m.stations)
    free = f.transformers.filter(pl.col("area_code").is_null())
    rows = (rows.join(customers, on="area_code", how="left").join(feeders, on="area_code",
                                                                   how="left")
            .join(f.area_centres.rename({"c_lon": "lon", "c_lat": "lat"}), on="area_code",
                  how="left"))
    near = _nearest_transformer(rows, free, "area_code").filter(pl.col("distance_m") <= 300)
    rows = rows.join(near, on="area_code", how="left")
    text = pl.format("link area {} to transformer {}, {} m from its customers, unlinked and "
                     "on the same feeder", "area_code", "to_id",
                     pl.col("distance_m").round(0).cast(pl.Int64))
    return findings(
        rows, "area_unlinked", "area", "area_code",
        pl.format("area {} ({}) has no transformer: {} customers without a chain",
                  "area_code", pl.col("area_name").fill_null(""),
                  pl.col("customers").fill_null(0)),
        json(pms_transformer_id=pl.col("pms_transformer_id"),
             customers=pl.col("customers").fill_null(0)),
        pl.when(pl.col("to_id").is_not_null())
        .then(link_fix("area_transformer", "area_code", "to_id", text)),
    )


def transformer_unlinked(f: Facts) -> pl.DataFrame:
    """Transformers without a decided feeder."""
    rows = f.transformers.filter(pl.col("linked_feeder").is_null())
    return findings(
        rows, "transformer_unlinked", "transformer", "transformer_id",
        pl.format("transformer {}: feeder code {} is no feeder and node {} is on none",
                  "transformer_id", pl.col("feeder_id").fill_null("(blank)"),
                  pl.col("node").fill_null("(blank)")),
        json(feeder_id=pl.col("feeder_id"), node=pl.col("node")), feeder=None,
    )


def feeder_unlinked(f: Facts) -> pl.DataFrame:
    """Feeders without a decided station."""
    m = f.model
    rows = m.feeders.join(m.feeder_links.select(pl.col("from_id").alias("feeder_id")),
                          on="feeder_id", how="anti")
    return findings(
        rows, "feeder_unlinked", "feeder", "feeder_id",
        pl.format("feeder {}: station code {} is no station", "feeder_id",
                  pl.col("station_id").fill_null("(blank)")),
        json(station_id=pl.col("station_id")), lon=None, lat=None,
    )


def area_pms_id_missing(f: Facts) -> pl.DataFrame:
    """Linked areas whose cross-system id is blank: suggest the decided transformer."""
    rows = f.model.areas.filter(pl.col("pms_transformer_id").is_null()).join(
        f.transformers.drop_nulls("area_code").select(
            "area_code", "transformer_id", pl.col("linked_feeder").alias("feeder_id"),
            "lon", "lat"),
        on="area_code", how="left")
    return findings(
        rows, "area_pms_id_missing", "area", "area_code",
        pl.format("area {}: PMS设备编码 is blank", "area_code"),
        json(linked_transformer=pl.col("transformer_id")),
        pl.when(pl.col("transformer_id").is_not_null()).then(edit_fix(
            "transformer_areas", "pms_transformer_id", pl.col("transformer_id"),
            pl.format("set PMS设备编码 of area {} to {}", "area_code", "transformer_id"))),
    )


def transformer_area_code_missing(f: Facts) -> pl.DataFrame:
    """In-service transformers whose cross-system id is blank: suggest the decided area. A
    retired transformer has no area to link, so its blank id is no finding."""
    rows = f.transformers.filter(pl.col("marketing_area_code").is_null()
                                 & (pl.col("status") != "retired"))
    return findings(
        rows, "transformer_area_code_missing", "transformer", "transformer_id",
        pl.format("transformer {}: 营销台区编号 is blank", "transformer_id"),
        json(linked_area=pl.col("area_code")),
        pl.when(pl.col("area_code").is_not_null()).then(edit_fix(
            "transformers", "marketing_area_code", pl.col("area_code"),
            pl.format("set 营销台区编号 of transformer {} to {}", "transformer_id",
                      "area_code"))),
        feeder="linked_feeder",
    )


def customer_coordinates_missing(f: Facts) -> pl.DataFrame:
    """Customers without coordinates (no map, no spatial checks)."""
    rows = f.customers.filter(pl.col("lon").is_null() | pl.col("lat").is_null())
    return findings(rows, "customer_coordinates_missing", "customer", "customer_id",
                    pl.format("customer {} has no coordinates", "customer_id"),
                    json(area_code=pl.col("area_code")))
