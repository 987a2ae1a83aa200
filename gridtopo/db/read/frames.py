r"""Reading query results into polars frames, the fast way for each backend.

* PostgreSQL streams a query with ``COPY (…) TO STDOUT`` as CSV, which polars parses.
* SQLite has no bulk export, and fetching millions of rows as Python tuples costs minutes, so
  SQLite builds the text itself: each block of rowids is one ``group_concat`` of unit-separated
  fields (one Python string per :data:`BLOCK_ROWS` rows), which polars' CSV reader parses.
  Blocks can be read by several threads on their own connections (SQLite and polars both run
  outside the GIL).

>>> line = text_row(["customer_id", "area_code"])
>>> line.count("char(31)")
1
>>> parse_text_rows("C1\x1fTQ1\x1eC2\x1f\\N", {"customer_id": pl.Utf8, "area_code": pl.Utf8}).rows()
[('C1', 'TQ1'), ('C2', None)]
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import polars as pl
from sqlalchemy import Connection, Engine, text

Schema = Mapping[str, pl.DataType | type[pl.DataType]]
CHUNK_ROWS = 200_000
"""Rows fetched per round trip when SQLite runs an arbitrary query."""


def read_frame(conn: Connection, sql: str, schema: Schema) -> pl.DataFrame:
    """Run ``sql`` (a plain SELECT of the ``schema`` columns, in order) into a polars frame.

    PostgreSQL streams it with ``COPY (…) TO STDOUT`` as CSV; SQLite fetches in chunks. Both
    avoid building one Python object per value for the whole result at once.
    """
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        buffer = io.BytesIO()
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, NULL '\\N')") as copy:
            for block in copy:
                buffer.write(block)
        if buffer.tell() == 0:
            return pl.DataFrame(schema=dict(schema))
        buffer.seek(0)
        return pl.read_csv(buffer, has_header=False, new_columns=list(schema),
                           schema_overrides=dict(schema), null_values="\\N", infer_schema=False)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql)
    frames = []
    while rows := cursor.fetchmany(CHUNK_ROWS):
        frames.append(pl.DataFrame(rows, schema=dict(schema), orient="row"))
    return pl.concat(frames) if frames else pl.DataFrame(schema=dict(schema))


TEXT_NULL = "\\N"
"""How a NULL travels in text rows (as PostgreSQL's COPY writes it)."""
BLOCK_ROWS = 200_000


def text_row(columns: Sequence[str]) -> str:
    """SQLite expression of one row as text: the values joined by the unit separator (0x1F),
    NULL as :data:`TEXT_NULL`. Values must not contain the separators (ids, numbers, codes)."""
    return " || char(31) || ".join(f"ifnull(CAST({c} AS TEXT), '{TEXT_NULL}')" for c in columns)


def parse_text_rows(block: str | None, schema: Schema) -> pl.DataFrame:
    """A block of :func:`text_row` rows joined by the record separator (0x1E) as a frame."""
    if not block:
        return pl.DataFrame(schema=dict(schema))
    return pl.read_csv(block.encode(), separator="\x1f", eol_char="\x1e", has_header=False,
                       new_columns=list(schema), schema_overrides=dict(schema),
                       null_values=TEXT_NULL, quote_char=None, infer_schema=False)


def read_table(
    source: Connection | Engine,
    table: str,
    schema: Schema,
    *,
    exprs: list[str] | None = None,
    where: str = "",
    readers: int = 1,
) -> pl.DataFrame:
    """Every row of ``table`` (optionally ``WHERE where``) as a frame of ``schema``, in storage
    order; column ``i`` is ``exprs[i]`` (SQL expressions), by default the plain column names.

    On SQLite each block of rowids comes back as ONE text value that SQLite builds
    (``group_concat`` of :func:`text_row`) and polars parses — instead of a Python object per
    value, which made reading 14 million keys and hashes take a minute. Given a connection, the
    blocks are read on it (so they see the caller's transaction); given an engine, by
    ``readers`` threads on their own connections. PostgreSQL goes through :func:`read_frame`.
    """
    columns = exprs or [f'"{c}"' for c in schema]
    condition = f" AND {where}" if where else ""
    if source.dialect.name != "sqlite":
        sql = f'SELECT {", ".join(columns)} FROM "{table}"' + (f" WHERE {where}" if where else "")
        if isinstance(source, Connection):
            return read_frame(source, sql, schema)
        with source.connect() as conn:
            return read_frame(conn, sql, schema)
    block_sql = text(f'SELECT group_concat(line, char(30)) FROM (SELECT {text_row(columns)} '
                     f'AS line FROM "{table}" WHERE rowid >= :lo AND rowid < :hi{condition})')
    bounds = text(f'SELECT min(rowid), max(rowid) FROM "{table}"')

    def block(conn: Connection, start: int) -> pl.DataFrame:
        value = conn.execute(block_sql, {"lo": start, "hi": start + BLOCK_ROWS}).scalar()
        return parse_text_rows(value, schema)

    if isinstance(source, Connection):
        low, high = source.execute(bounds).one()
        starts = range(low, high + 1, BLOCK_ROWS) if low is not None else range(0)
        parts = [block(source, start) for start in starts]
    else:
        with source.connect() as conn:
            low, high = conn.execute(bounds).one()
        starts = range(low, high + 1, BLOCK_ROWS) if low is not None else range(0)

        def on_own_connection(start: int) -> pl.DataFrame:
            with source.connect() as conn:
                return block(conn, start)

        with ThreadPoolExecutor(max(1, readers)) as pool:
            parts = list(pool.map(on_own_connection, starts))
    return pl.concat(parts) if parts else pl.DataFrame(schema=dict(schema))
