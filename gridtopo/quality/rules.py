"""Record rules of the audit: completeness, validity, uniqueness, consistency, accuracy and
timeliness, each one columnar polars expression over the stored model (no per-row Python).

Every rule returns findings as a frame of :data:`FINDING_SCHEMA`: the entity, a message a
steward reads, JSON evidence and, where one exists, a JSON suggested fix. A fix with
``link_kind`` is a link a steward can accept, which becomes a steward decision, e.g.
``{"action": "link", "link_kind": "customer_transformer", "entity_id": "0300…",
"to_id": "PB-0001051", "text": "link customer 0300… to transformer PB-0001051, 42 m away on
the same feeder"}``.

>>> facts = Facts.of(model, config)  # doctest: +SKIP
>>> customer_area_unknown(facts).height  # doctest: +SKIP
6
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import polars as pl

from gridtopo.geo import distance_m
from gridtopo.ingest.crs import to_wgs84
from gridtopo.quality.config import AuditConfig
from gridtopo.quality.model import Model
from gridtopo.reconcile.links import match_area_feeders
from gridtopo.reconcile.names import same_name

FINDING_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "rule": pl.Utf8, "entity_type": pl.Utf8, "entity_id": pl.Utf8, "message": pl.Utf8,
    "evidence": pl.Utf8, "suggested_fix": pl.Utf8, "feeder_id": pl.Utf8,
    "lon": pl.Float64, "lat": pl.Float64,
}
"""Columns of a rule's findings; ``feeder_id`` and lon/lat place it on scorecards and the map."""


def json(**fields: pl.Expr) -> pl.Expr:
    """A JSON object from named expressions (one string per row)."""
    return pl.struct(*(expr.alias(name) for name, expr in fields.items())).struct.json_encode()


def findings(frame: pl.DataFrame, rule: str, entity_type: str, entity_id: str,
             message: pl.Expr, evidence: pl.Expr, fix: pl.Expr | None = None,
             feeder: str | None = "feeder_id", lon: str | None = "lon",
             lat: str | None = "lat") -> pl.DataFrame:
    """Shape ``frame`` (one row per finding) into :data:`FINDING_SCHEMA`."""
    def col(name: str | None, dtype: type[pl.DataType]) -> pl.Expr:
        return pl.col(name).cast(dtype) if name else pl.lit(None, dtype)

    return frame.select(
        pl.lit(rule).alias("rule"), pl.lit(entity_type).alias("entity_type"),
        pl.col(entity_id).cast(pl.Utf8).alias("entity_id"), message.alias("message"),
        evidence.alias("evidence"),
        (fix if fix is not None else pl.lit(None, pl.Utf8)).alias("suggested_fix"),
        col(feeder, pl.Utf8).alias("feeder_id"), col(lon, pl.Float64).alias("lon"),
        col(lat, pl.Float64).alias("lat"),
    )


def link_fix(kind: str, entity: str, to: str, text: pl.Expr) -> pl.Expr:
    """A suggested link a steward can accept as a decision."""
    return json(action=pl.lit("link"), link_kind=pl.lit(kind), entity_id=pl.col(entity),
                to_id=pl.col(to), text=text)


def edit_fix(table: str, field: str, value: pl.Expr, text: pl.Expr) -> pl.Expr:
    """A suggested correction of a source field (made in the source system)."""
    return json(action=pl.lit("edit"), table=pl.lit(table), field=pl.lit(field),
                value=value.cast(pl.Utf8), text=text)


@dataclass(frozen=True)
class Facts:
    """Frames derived once and shared by the rules: the chain and reference positions."""

    model: Model
    config: AuditConfig
    customers: pl.DataFrame
    """Every customer's columns plus its decided transformer_id, feeder_id and station_id."""
    transformers: pl.DataFrame
    """transformers with the decided ``linked_feeder`` and ``area_code`` of their area."""
    area_centres: pl.DataFrame
    """area_code, c_lon, c_lat: median position of the area's customers."""

    @classmethod
    def of(cls, model: Model, config: AuditConfig) -> Facts:
        """Derive the shared frames from ``model``."""
        transformers = model.transformers.join(
            model.transformer_links.rename({"from_id": "transformer_id",
                                            "to_id": "linked_feeder"}),
            on="transformer_id", how="left",
        ).join(
            model.area_links.rename({"from_id": "area_code", "to_id": "transformer_id"}),
            on="transformer_id", how="left",
        )
        centres = (
            model.customers.drop_nulls(["lon", "lat"]).group_by("area_code")
            .agg(pl.col("lon").median().alias("c_lon"), pl.col("lat").median().alias("c_lat"),
                 pl.len().alias("n_located"))
        )
        chain = model.chain().select("transformer_id", "feeder_id", "station_id")
        customers = model.customers.hstack(chain.get_columns())  # same order: no copy
        # the largest frames exist once: customers with their chain, customer links folded in
        lean = replace(model, customers=customers, customer_links=model.customer_links.clear())
        return cls(lean, config, customers, transformers, centres)

    @cached_property
    def load(self) -> pl.DataFrame:
        """Per transformer: ``active`` customers and their summed ``contract_kva``."""
        return _load(self)

    @property
    def chain(self) -> pl.DataFrame:
        """customer_id, area_code, transformer_id, feeder_id, station_id (decided links)."""
        return self.customers.select("customer_id", "area_code", "transformer_id",
                                     "feeder_id", "station_id")


# --------------------------------------------------------------------------- completeness


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
    """Transformers whose cross-system id is blank: suggest the decided area."""
    rows = f.transformers.filter(pl.col("marketing_area_code").is_null())
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


# --------------------------------------------------------------------------- validity


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


# --------------------------------------------------------------------------- consistency


def area_pms_id_conflict(f: Facts) -> pl.DataFrame:
    """Linked areas whose PMS设备编码 names another transformer than the decided one."""
    rows = f.model.areas.join(
        f.transformers.drop_nulls("area_code").select(
            "area_code", pl.col("transformer_id").alias("linked"),
            pl.col("linked_feeder").alias("feeder_id"), "lon", "lat"),
        on="area_code", how="inner",
    ).filter(pl.col("pms_transformer_id").is_not_null()
             & (pl.col("pms_transformer_id") != pl.col("linked")))
    return findings(
        rows, "area_pms_id_conflict", "area", "area_code",
        pl.format("area {}: PMS设备编码 {} but the chain links transformer {}", "area_code",
                  "pms_transformer_id", "linked"),
        json(pms_transformer_id=pl.col("pms_transformer_id"), linked=pl.col("linked")),
        edit_fix("transformer_areas", "pms_transformer_id", pl.col("linked"),
                 pl.format("set PMS设备编码 of area {} to {}", "area_code", "linked")),
    )


def transformer_area_code_conflict(f: Facts) -> pl.DataFrame:
    """Linked transformers whose 营销台区编号 names another area than the decided one."""
    rows = f.transformers.filter(pl.col("marketing_area_code").is_not_null()
                                 & pl.col("area_code").is_not_null()
                                 & (pl.col("marketing_area_code") != pl.col("area_code")))
    return findings(
        rows, "transformer_area_code_conflict", "transformer", "transformer_id",
        pl.format("transformer {}: 营销台区编号 {} but the chain links area {}",
                  "transformer_id", "marketing_area_code", "area_code"),
        json(marketing_area_code=pl.col("marketing_area_code"), linked=pl.col("area_code")),
        edit_fix("transformers", "marketing_area_code", pl.col("area_code"),
                 pl.format("set 营销台区编号 of transformer {} to {}", "transformer_id",
                           "area_code")),
        feeder="linked_feeder",
    )


def transformer_feeder_code_unknown(f: Facts) -> pl.DataFrame:
    """Transformers whose feeder code is no feeder; the fix is the feeder of their node."""
    rows = f.transformers.filter(pl.col("feeder_id").is_not_null()).join(
        f.model.feeders.select("feeder_id"), on="feeder_id", how="anti")
    return findings(
        rows, "transformer_feeder_code_unknown", "transformer", "transformer_id",
        pl.format("transformer {}: feeder code {} is no feeder", "transformer_id",
                  "feeder_id"),
        json(feeder_id=pl.col("feeder_id"), node=pl.col("node"),
             feeder_of_node=pl.col("linked_feeder")),
        pl.when(pl.col("linked_feeder").is_not_null()).then(edit_fix(
            "transformers", "feeder_id", pl.col("linked_feeder"),
            pl.format("set the feeder code of transformer {} to {}, the feeder of node {}",
                      "transformer_id", "linked_feeder", "node"))),
        feeder="linked_feeder",
    )


def customer_feeder_name_mismatch(f: Facts) -> pl.DataFrame:
    """Customers whose 线路名称 names another feeder than the one of their transformer (or,
    when the customer has no chain, than the one their area names)."""
    m = f.model
    rows = (
        f.customers.select("customer_id", "area_code", "feeder_name", "lon", "lat",
                           "transformer_id", "feeder_id")
        .join(m.feeders.select("feeder_id", pl.col("feeder_name").alias("chain_name")),
              on="feeder_id", how="left")
        .join(m.areas.select("area_code", pl.col("feeder_name").alias("area_feeder")),
              on="area_code", how="left")
        .with_columns(pl.coalesce("chain_name", "area_feeder").alias("reference"))
        .filter(pl.col("feeder_name").is_not_null() & pl.col("reference").is_not_null()
                & (pl.col("feeder_name") != pl.col("feeder_id")).fill_null(True)
                & (pl.col("feeder_name") != pl.col("reference")))
    )
    rows = rows.filter(~same_name("feeder", pl.col("feeder_name"), pl.col("reference")))
    source = pl.when(pl.col("chain_name").is_not_null()).then(
        pl.format("its transformer {} is on", "transformer_id")).otherwise(
        pl.format("its area {} names", "area_code"))
    return findings(
        rows, "customer_feeder_name_mismatch", "customer", "customer_id",
        pl.format("customer {}: 线路名称 {} but {} {}", "customer_id", "feeder_name", source,
                  "reference"),
        json(feeder_name=pl.col("feeder_name"), chain_feeder=pl.col("feeder_id"),
             reference=pl.col("reference")),
        edit_fix("customers", "feeder_name", pl.col("reference"),
                 pl.format("set 线路名称 of customer {} to {}", "customer_id", "reference")),
    )


def area_name_mismatch(f: Facts) -> pl.DataFrame:
    """Linked areas whose normalised name differs from their transformer's."""
    rows = f.model.areas.select("area_code", "area_name").join(
        f.transformers.drop_nulls("area_code"), on="area_code", how="inner",
    ).filter(~same_name("transformer", pl.col("area_name"), pl.col("transformer_name")))
    return findings(
        rows, "area_name_mismatch", "area", "area_code",
        pl.format("area {} ({}) is linked to transformer {} ({})", "area_code", "area_name",
                  "transformer_id", "transformer_name"),
        json(area_name=pl.col("area_name"), transformer_name=pl.col("transformer_name")),
        feeder="linked_feeder",
    )


def area_capacity_mismatch(f: Facts) -> pl.DataFrame:
    """Areas whose capacity differs from their transformer's rating beyond the tolerance."""
    tol = f.config.threshold("area_capacity_mismatch", "tolerance")
    rows = f.model.areas.select("area_code", pl.col("capacity_kva").alias("area_kva")).join(
        f.transformers.drop_nulls("area_code"), on="area_code", how="inner",
    ).filter((pl.col("area_kva") - pl.col("capacity_kva")).abs()
             > tol * pl.col("capacity_kva").abs())
    return findings(
        rows, "area_capacity_mismatch", "area", "area_code",
        pl.format("area {}: capacity {} kVA but transformer {} is rated {} kVA", "area_code",
                  "area_kva", "transformer_id", "capacity_kva"),
        json(area_kva=pl.col("area_kva"), transformer_kva=pl.col("capacity_kva")),
        edit_fix("transformer_areas", "capacity_kva", pl.col("capacity_kva"),
                 pl.format("set 台区容量 of area {} to {}", "area_code", "capacity_kva")),
        feeder="linked_feeder",
    )


def _load(f: Facts) -> pl.DataFrame:
    """Per transformer: active customers and their contract kVA (see :attr:`Facts.load`)."""
    return (f.customers.filter(pl.col("status") == "active")
            .drop_nulls("transformer_id").group_by("transformer_id")
            .agg(pl.len().alias("active"), pl.col("contract_kva").sum().alias("contract_kva")))


def transformer_retired_with_customers(f: Facts) -> pl.DataFrame:
    """Retired transformers that still supply active customers."""
    rows = f.transformers.filter(pl.col("status") == "retired").join(
        f.load, on="transformer_id", how="inner")
    return findings(
        rows, "transformer_retired_with_customers", "transformer", "transformer_id",
        pl.format("transformer {} is retired but {} active customers are linked to it",
                  "transformer_id", "active"),
        json(active_customers=pl.col("active"), area_code=pl.col("area_code")),
        edit_fix("transformers", "status", pl.lit("in_service"),
                 pl.format("set transformer {} in service, or move its {} customers",
                           "transformer_id", "active")),
        feeder="linked_feeder",
    )


# --------------------------------------------------------------------------- accuracy


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


# --------------------------------------------------------------------------- timeliness


def record_stale(f: Facts) -> pl.DataFrame:
    """Customers, areas and transformers not updated within ``max_age_days`` of ``now``."""
    days = f.config.threshold("record_stale", "max_age_days")
    now = f.config.now.replace(tzinfo=None)
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


RECORD_RULES: dict[str, Callable[[Facts], pl.DataFrame]] = {
    fn.__name__: fn for fn in (
        customer_area_unknown, area_unlinked, transformer_unlinked, feeder_unlinked,
        area_pms_id_missing, transformer_area_code_missing, customer_coordinates_missing,
        coordinates_outside_territory, meter_id_duplicate, area_pms_id_conflict,
        transformer_area_code_conflict, transformer_feeder_code_unknown,
        customer_feeder_name_mismatch, area_name_mismatch, area_capacity_mismatch,
        transformer_retired_with_customers, customer_offset_gcj02, transformer_offset_gcj02,
        customer_far_from_transformer, transformer_overloaded, transformer_no_customers,
        record_stale,
    )
}
"""The record rules by name (the topology rules are in :mod:`gridtopo.quality.network`)."""
