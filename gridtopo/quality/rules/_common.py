"""What every rule's findings look like, and the JSON builders the rules share.

A rule returns one row per finding in :data:`FINDING_SCHEMA`: the entity, a message a steward
reads, JSON evidence and, where one exists, a JSON suggested fix — a link a steward can accept
(:func:`link_fix`, which becomes a steward decision) or a correction of a source field
(:func:`edit_fix`, made in the source system).

>>> frame = pl.DataFrame({"customer_id": ["C1"], "to_id": ["T9"], "lon": [113.2],
...                       "lat": [23.1], "feeder_id": ["F1"]})
>>> found = findings(frame, "example", "customer", "customer_id",
...                  pl.format("customer {} has no chain", "customer_id"),
...                  json(to_id=pl.col("to_id")),
...                  link_fix("customer_transformer", "customer_id", "to_id", pl.lit("link")))
>>> found["message"][0], found["evidence"][0]
('customer C1 has no chain', '{"to_id":"T9"}')
>>> found["suggested_fix"][0]
'{"action":"link","link_kind":"customer_transformer","entity_id":"C1","to_id":"T9","text":"link"}'
"""

from __future__ import annotations

import polars as pl

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
