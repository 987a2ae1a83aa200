"""Which problems refuse a whole row and which only set one field aside.

A row with a value that cannot be used — a capacity that is no number, an unreadable date, a
coordinate out of range, an unknown status or phase — is still a station, feeder, edge,
transformer, 台区 or customer that the chain runs through: refusing a transformer would cut
every customer below it off their chain, refusing a customer would leave it out of every
outage answer (it is still out when its feeder trips). So only the field is quarantined and
the row is kept with that field blank, as if the export had left it empty (an enum then takes
its default, e.g. a transformer's status ``in_service``). A point is one value: when ``lon``
or ``lat`` is unusable both are blanked.

A row is refused whole when a problem concerns the row itself (a wrong field count), or a field
of :attr:`~gridtopo.ingest.tables.Table.row_fields` — its key (blank, too long, or losing a
duplicate conflict), a required field the row cannot exist without (a customer's 台区编号, an
edge's ends), or an essential one such as an edge's 常开. A blank 户名 is required but keeps
its customer: the name is not part of the chain.

>>> from gridtopo.ingest.tables import TABLES
>>> problems = pl.DataFrame({ROW: [0, 1, 1], "field": ["capacity_kva", "capacity_kva",
...                                                    "transformer_id"]})
>>> problems.with_columns(row_kept(TABLES["transformers"]))["row_kept"].to_list()
[True, False, False]
"""

from __future__ import annotations

import polars as pl

from gridtopo.ingest.convert import ROW
from gridtopo.ingest.tables import Table

KEPT = "row_kept"
"""Column of a problem: whether its row is kept (only its field quarantined)."""
POINT = ("lon", "lat")
"""Fields blanked together: a point with one coordinate is no point."""


def refuses_row(table: Table) -> pl.Expr:
    """Per problem: whether it refuses its row (a whole-row problem, or one of a field the
    row cannot exist without)."""
    return pl.col("field").is_null() | pl.col("field").is_in(sorted(table.row_fields))


def row_kept(table: Table) -> pl.Expr:
    """Per problem (:data:`KEPT`): whether none of its row's problems refuses the row."""
    return (~refuses_row(table).any().over(ROW)).alias(KEPT)


def blank_unusable(frame: pl.DataFrame, problems: pl.DataFrame, table: Table) -> pl.DataFrame:
    """``frame`` (converted rows, :data:`ROW` = position) with the field of every problem of a
    kept row (``problems`` with :data:`KEPT`) blanked: null, or the field's default."""
    kept = problems.filter(pl.col(KEPT)).select(ROW, "field")
    if kept.height == 0:
        return frame
    in_point = pl.col("field").is_in(POINT)
    targets = pl.concat([
        kept.filter(~in_point),
        *(kept.filter(in_point).with_columns(pl.lit(c).alias("field")) for c in POINT),
    ]).unique()
    return frame.with_columns(
        frame[name].scatter(rows[ROW], table.field(name).default)
        for (name,), rows in targets.group_by("field")
    )
