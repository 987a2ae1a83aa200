"""Turn problems into quarantined rows a data steward can act on.

Every source row that is refused (:mod:`gridtopo.ingest.unusable`) gives exactly one
quarantined row: ``field``, ``value`` and ``rule`` of its most important problem (lowest rank:
a wrong field count, then a value that does not parse, then coordinates, then contract rules
with blank required fields first, then a key conflict), and a ``message`` naming the file, the
line and every problem, e.g. ``marketing/customers.csv line 643: 户名 (customer_name) is blank
but required``. A row that is kept gives one quarantined row per unusable *field* instead, with
``row_kept`` true and the problems of that field only. ``value`` is the text as it stood in the
file; ``raw`` is the whole source row as a JSON object keyed by the file's own headers;
``entity_id`` is the row's key when it is a usable one (so a kept row's field can be found in
the model).
"""

from __future__ import annotations

import polars as pl

from gridtopo.ingest.convert import ROW, clean_text
from gridtopo.ingest.headers import HeaderMap
from gridtopo.ingest.limits import RAW_CHARS
from gridtopo.ingest.tables import Field
from gridtopo.ingest.textrows import LINE, RawTable
from gridtopo.ingest.unusable import KEPT

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.Int32(), "line": pl.Int64(), "field": pl.Utf8(), "value": pl.Utf8(),
    "rule": pl.Utf8(), "message": pl.Utf8(), "raw": pl.Utf8(), KEPT: pl.Boolean(),
    "entity_id": pl.Utf8(),
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


def _entity_ids(rows: pl.Series, raw: RawTable, headers: HeaderMap, key: Field) -> pl.Series:
    """The key of each of ``rows`` as ingest reads it, null where it is no usable key."""
    source = headers.header_of(key.name)
    if source is None:
        return pl.repeat(None, rows.len(), dtype=pl.Utf8, eager=True)
    ids = clean_text(raw.frame[source].gather(rows))
    if key.max_length is not None:
        ids = ids.set(ids.str.len_chars() > key.max_length, None)
    return ids


def _cut(values: pl.Series) -> pl.Series:
    """Source text as a quarantine row stores it: at most :data:`RAW_CHARS` characters (a
    10 MB field is set aside, not kept whole)."""
    if not (values.str.len_chars() > RAW_CHARS).any():
        return values
    text = pl.col(values.name)
    return values.to_frame().select(
        pl.when(text.str.len_chars() > RAW_CHARS).then(text.str.slice(0, RAW_CHARS) + "…")
        .otherwise(text)).to_series()


def quarantine_rows(problems: pl.DataFrame, raw: RawTable, headers: HeaderMap, key: Field,
                    file_index: int, path: str) -> pl.DataFrame:
    """Quarantined rows of one file from its ``problems`` (:data:`ROW`, field, rule, detail,
    rank, :data:`~gridtopo.ingest.unusable.KEPT`); ``key`` is the table's key field,
    ``path`` how messages name the file."""
    if problems.height == 0:
        return empty_quarantine()
    fields = list(headers.fields)
    header_names = [headers.fields[f] for f in fields]
    # quoted in a message as errors.snippet quotes: no control or format characters
    shown = pl.col("value").str.replace_all(r"\s+", " ").str.replace_all(r"[\p{Cc}\p{Cf}]", "")
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
        problems.with_columns(_cut(_values(problems, raw, headers)))
        .with_columns(sentence.alias("sentence"))
        .with_columns(pl.when(pl.col(KEPT)).then(pl.col("field")).alias("_kept_field"))
        .sort([ROW, "rank"], maintain_order=True)  # equal ranks: in the order found
        .group_by(ROW, "_kept_field", maintain_order=True)  # a kept row: one per field
        .agg(pl.col("field").first(), pl.col("value").first(), pl.col("rule").first(),
             pl.col("sentence").str.join("; "), pl.col(KEPT).first())
    )
    rows = per_row[ROW]
    lines = raw.frame[LINE].gather(rows)
    source = pl.DataFrame([_cut(raw.frame[c].gather(rows)) for c in raw.source_columns])
    json = source.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    return per_row.select(
        pl.lit(file_index, pl.Int32).alias("file"),
        lines.alias("line"),
        "field", "value", "rule",
        (pl.lit(f"{path} {raw.unit} ") + lines.cast(pl.Utf8) + ": "
         + pl.col("sentence")).alias("message"),
        json.alias("raw"),
        KEPT,
        _entity_ids(rows, raw, headers, key).alias("entity_id"),
    ).sort("line", maintain_order=True)
