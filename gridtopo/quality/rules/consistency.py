"""Consistency rules: two records, or two systems, that say different things about one link.

The cross-system ids (PMS设备编码, 营销台区编号, a transformer's feeder code) are compared with
the chain the reconciliation decided, names are compared once normalised by
:mod:`gridtopo.reconcile.names`, and capacities and statuses with the transformer's.
"""

from __future__ import annotations

import polars as pl

from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import edit_fix, findings, json
from gridtopo.reconcile.names import same_name


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
