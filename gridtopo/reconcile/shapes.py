"""The shapes reconciliation speaks in: link rows, customer links, undecided entities.

Every step of :mod:`gridtopo.reconcile.links` and :mod:`gridtopo.reconcile.areas` produces
frames of these schemas, so the load, the partitioned pipeline and the audit read one format.

>>> as_links(pl.DataFrame({"from_id": ["XL-1"], "to_id": ["BDZ-1"], "method": ["code"],
...                        "confidence": [1.0], "evidence": ["{}"]}), "feeder_station").row(0)
('feeder_station', 'XL-1', 'BDZ-1', 'code', 1.0, '{}')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

LINK_COLUMNS = {
    "kind": pl.Utf8,
    "from_id": pl.Utf8,
    "to_id": pl.Utf8,
    "method": pl.Utf8,
    "confidence": pl.Float64,
    "evidence": pl.Utf8,
}
CUSTOMER_LINK_COLUMNS = {
    "customer_id": pl.Utf8,
    "transformer_id": pl.Utf8,
    "link_method": pl.Utf8,
    "link_confidence": pl.Float64,
}
"""A customer's link as stored on its row (the evidence is the row's own ``area_code``)."""
UNLINKED_COLUMNS = {"kind": pl.Utf8, "entity_id": pl.Utf8, "code": pl.Utf8, "reason": pl.Utf8}
"""An undecided entity: ``code`` is a stable category (see :data:`UNLINKED_CODES`), ``reason``
the sentence a steward reads."""
UNLINKED_CODES = {
    "no_station": "the feeder's station code is blank or not a station",
    "no_feeder": "the transformer's feeder code is not a feeder and its node is on none",
    "no_candidate": "no transformer matches the area by id, name or location",
    "conflict": "two transformers have equal evidence for the area",
    "taken": "every candidate transformer is better matched to another area",
    "area_unlinked": "the customer's area is unknown or has no decided transformer",
    "steward_none": "a steward decided the entity has no link",
}
DECISION_COLUMNS = {"link_kind": pl.Utf8, "entity_id": pl.Utf8, "decision": pl.Utf8}
NO_LINK = "none"
"""A steward decision of ``none`` keeps the entity unlinked whatever the methods say."""


def empty_frame(schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def table_columns(tables: Mapping[str, pl.DataFrame], name: str,
                  columns: dict[str, Any]) -> pl.DataFrame:
    """The named table with at least ``columns`` (absent table or column → empty/null)."""
    frame = tables.get(name)
    if frame is None:
        return empty_frame(columns)
    return frame.select(
        (pl.col(col) if col in frame.columns else pl.lit(None)).cast(dtype).alias(col)
        for col, dtype in columns.items()
    )


def evidence(*columns: str) -> pl.Expr:
    return pl.struct(columns).struct.json_encode().alias("evidence")


def as_links(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(kind).alias("kind")).select(list(LINK_COLUMNS))


def unlinked_rows(
    ids: pl.DataFrame, kind: str, code: str | pl.Expr, reason: str | pl.Expr
) -> pl.DataFrame:
    code_expr = pl.lit(code) if isinstance(code, str) else code
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return ids.select(
        pl.lit(kind).alias("kind"), pl.col("entity_id"), code_expr.alias("code"),
        reason_expr.alias("reason"),
    ).select(list(UNLINKED_COLUMNS))
