"""Frames the audit derives once from the stored model and shares between the rules
(:mod:`gridtopo.quality.rules`), the scorecards and the GX suites: every customer with its
decided chain, transformers with their decided feeder and area, and each area's centre.

The customer frame is the model's customers with the chain added as columns (same order, no
copy), and the model kept in :attr:`Facts.model` drops its customer links, so the largest frames
exist once in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import polars as pl

from gridtopo.quality.config import AuditConfig
from gridtopo.quality.model import Model


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
        return (self.customers.filter(pl.col("status") == "active")
                .drop_nulls("transformer_id").group_by("transformer_id")
                .agg(pl.len().alias("active"),
                     pl.col("contract_kva").sum().alias("contract_kva")))

    @property
    def chain(self) -> pl.DataFrame:
        """customer_id, area_code, transformer_id, feeder_id, station_id (decided links)."""
        return self.customers.select("customer_id", "area_code", "transformer_id",
                                     "feeder_id", "station_id")
