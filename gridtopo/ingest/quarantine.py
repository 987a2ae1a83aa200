"""Turn problems into quarantined rows a data steward can act on.

Every source row with at least one problem gives exactly one quarantined row: ``field``,
``value`` and ``rule`` of its most important problem (lowest rank: a wrong field count, then a
value that does not parse, then coordinates, then contract rules with blank required fields
first, then a key conflict), and a ``message`` naming the file, the line and every problem,
e.g. ``marketing/customers.csv line 643: 合同容量 (contract_kva) '-6' must be ≥ 0``.
``value`` is the text as it stood in the file; ``raw`` is the whole source row as a JSON object
keyed by the file's own headers.
"""

from __future__ import annotations

import polars as pl

from gridtopo.ingest.convert import ROW
from gridtopo.ingest.headers import HeaderMap
from gridtopo.ingest.textrows import LINE, RawTable

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.Int32(), "line": pl.Int64(), "field": pl.Utf8(), "value": pl.Utf8(),
    "rule": pl.Utf8(), "message": pl.Utf8(), "raw": pl.Utf8(),
}
"""Columns of :attr:`gridtopo.ingest.TableData.quarantine`."""

SHOWN_VALUE_CHARS = 80
"""Longest value quoted in a message (longer ones are cut with an ellipsis)."""


def empty_quarantine() -> pl.DataFrame:
    """A quarantine frame with no rows."""
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _values(problems: pl.DataFrame, raw: RawTable, headers: HeaderMap) -> pl.Series:
    """The source text of each problem's field (null for whole-row problems)."""
    values = pl.repeat(None, problems.height, dtype=pl.Utf8, eager=True)
    for field in problems["field"].drop_nulls().unique().to_list():
        source = headers.header_of(field)
        if source is None:
            continue
        where = problems["field"] == field
        rows = problems.filter(where)[ROW]
        values = values.scatter(where.arg_true(), raw.frame[source].gather(rows))
    return values.alias("value")


def quarantine_rows(problems: pl.DataFrame, raw: RawTable, headers: HeaderMap,
                    file_index: int, path: str) -> pl.DataFrame:
    """Quarantined rows of one file from its ``problems`` (:data:`ROW`, field, rule, detail,
    rank); ``path`` is how messages name the file."""
    if problems.height == 0:
        return empty_quarantine()
    fields = list(headers.fields)
    header_names = [headers.fields[f] for f in fields]
    shown = pl.col("value").str.replace_all(r"\s+", " ")
    shown = pl.when(shown.str.len_chars() > SHOWN_VALUE_CHARS).then(
        shown.str.slice(0, SHOWN_VALUE_CHARS) + "…").otherwise(shown)
    header = pl.col("field").replace_strict(fields, header_names, default=pl.col("field"),
                                            return_dtype=pl.Utf8)
    subject = (
        pl.when(header == pl.col("field")).then(pl.col("field"))
        .otherwise(header + " (" + pl.col("field") + ")")
        + pl.when(pl.col("value").is_not_null()).then(" '" + shown + "'").otherwise(pl.lit(""))
    )
    sentence = pl.when(pl.col("field").is_null()).then(pl.col("detail")).otherwise(
        subject + " " + pl.col("detail"))
    per_row = (
        problems.with_columns(_values(problems, raw, headers))
        .with_columns(sentence.alias("sentence"))
        .sort([ROW, "rank"], maintain_order=True)  # equal ranks: in the order found
        .group_by(ROW, maintain_order=True)
        .agg(pl.col("field").first(), pl.col("value").first(), pl.col("rule").first(),
             pl.col("sentence").str.join("; "))
    )
    rows = per_row[ROW]
    lines = raw.frame[LINE].gather(rows)
    source = pl.DataFrame([raw.frame[c].gather(rows) for c in raw.source_columns])
    json = source.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    return per_row.select(
        pl.lit(file_index, pl.Int32).alias("file"),
        lines.alias("line"),
        "field", "value", "rule",
        (pl.lit(f"{path} {raw.unit} ") + lines.cast(pl.Utf8) + ": "
         + pl.col("sentence")).alias("message"),
        json.alias("raw"),
    ).sort("line")
