"""Bulk writes of polars frames into the model, the fast way for each backend.

* PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` fed by polars' CSV writer in chunks;
  geometries travel as EWKT text (``SRID=4326;POINT(…)``) and PostGIS parses them on input.
* SQLite: one prepared ``INSERT`` run with ``executemany`` over row tuples in chunks, inside the
  caller's transaction; geometries are built by SpatiaLite's ``GeomFromText(?, 4326)``.

A frame's columns must be named as the table's columns; a column holding geometry must be WKT
text and be named in ``geometry``. Datetimes are written as naive UTC.

>>> with engine.begin() as conn:  # doctest: +SKIP
...     bulk_insert(conn, "stations", frame, geometry=("geom",))
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import polars as pl
from sqlalchemy import Connection

from gridtopo.db.models import SRID
from gridtopo.errors import BulkLoadError

CHUNK_ROWS = 200_000

ProgressFn = Callable[[int], None]


def _prepare(frame: pl.DataFrame, backend: str, geometry: Sequence[str]) -> pl.DataFrame:
    """Cast values to what the backend's bulk path reads unambiguously."""
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if name in geometry and backend == "postgresql":
            casts.append((pl.lit(f"SRID={SRID};") + column).alias(name))
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            casts.append(column.dt.strftime("%Y-%m-%d %H:%M:%S.%6f").alias(name))
        elif dtype == pl.Boolean and backend == "sqlite":
            casts.append(column.cast(pl.Int8).alias(name))
        elif isinstance(dtype, pl.Struct | pl.List):
            casts.append(column.struct.json_encode().alias(name))
    return frame.with_columns(casts) if casts else frame


def bulk_insert(
    conn: Connection,
    table: str,
    frame: pl.DataFrame,
    *,
    geometry: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> int:
    """Insert every row of ``frame`` into ``table`` on ``conn``; return the row count."""
    if frame.is_empty():
        return 0
    backend = conn.dialect.name
    data = _prepare(frame, backend, geometry)
    try:
        if backend == "postgresql":
            _copy_postgresql(conn, table, data, progress)
        else:
            _insert_sqlite(conn, table, data, geometry, progress)
    except conn.dialect.loaded_dbapi.Error as err:
        reason = str(err).strip().splitlines()[0]
        raise BulkLoadError(f"loading {table} failed, nothing was changed: {reason}") from err
    return frame.height


def _copy_postgresql(
    conn: Connection, table: str, frame: pl.DataFrame, progress: ProgressFn | None
) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("SET LOCAL TIME ZONE 'UTC'")
    sql = f'COPY "{table}" ({columns}) FROM STDIN (FORMAT csv, NULL \'\\N\')'
    with cursor.copy(sql) as copy:
        for offset in range(0, frame.height, CHUNK_ROWS):
            chunk = frame.slice(offset, CHUNK_ROWS)
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False, null_value="\\N")
            copy.write(buffer.getvalue())
            if progress:
                progress(chunk.height)


def _insert_sqlite(
    conn: Connection,
    table: str,
    frame: pl.DataFrame,
    geometry: Sequence[str],
    progress: ProgressFn | None,
) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    values = ", ".join(f"GeomFromText(?, {SRID})" if c in geometry else "?"
                       for c in frame.columns)
    sql = f'INSERT INTO "{table}" ({columns}) VALUES ({values})'
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for offset in range(0, frame.height, CHUNK_ROWS):
        chunk = frame.slice(offset, CHUNK_ROWS)
        cursor.executemany(sql, chunk.iter_rows())
        if progress:
            progress(chunk.height)


def point_wkt(lon: pl.Expr, lat: pl.Expr) -> pl.Expr:
    """``POINT(lon lat)`` WKT from two float columns; null when either is null."""
    return pl.format("POINT({} {})", lon, lat)


def read_frame(
    conn: Connection, sql: str, schema: dict[str, pl.DataType | type[pl.DataType]]
) -> pl.DataFrame:
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
            return pl.DataFrame(schema=schema)
        buffer.seek(0)
        return pl.read_csv(buffer, has_header=False, new_columns=list(schema),
                           schema_overrides=schema, null_values="\\N", infer_schema=False)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql)
    frames = []
    while rows := cursor.fetchmany(CHUNK_ROWS):
        frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)
