"""``field_unreadable`` (validity): a station, feeder, edge or transformer that ingest loaded
without one of its source values, because the value could not be used.

Ingest keeps such a row — its customers keep their chain — and quarantines only the field
(:mod:`gridtopo.ingest.unusable`); the model then holds the field blank, or at its default.
This rule turns those field quarantines of the model's ingest run into one finding per
entity, listing each field with its source value and the rule it broke, so the source
system gets corrected; e.g. ``transformer PB-0001051: source value set aside as unusable —
capacity_kva '-400' (out_of_range)``.

>>> sorted(ENTITY_TYPES)[:2]
['customers', 'edges']
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from gridtopo.quality.rules import FINDING_SCHEMA, Facts, findings, json

RULE = "field_unreadable"
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
        findings(rows, RULE, ENTITY_TYPES.get(table, table), "entity_id",
                 pl.format("{} {}: source value set aside as unusable — {}",
                           pl.lit(ENTITY_TYPES.get(table, table)), "entity_id", "listed"),
                 json(fields=pl.col("fields")))
        for (table,), rows in per_entity.group_by("table", maintain_order=True)
    ]
    return pl.concat(found) if found else pl.DataFrame(schema=FINDING_SCHEMA)


FIELD_RULES: dict[str, Callable[[Facts], pl.DataFrame]] = {RULE: field_unreadable}
"""The rules over what ingest set aside, by name (evaluated with the record rules)."""
