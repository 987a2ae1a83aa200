"""Bulk writes of polars frames into the model, the fast way for each backend.

* PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` fed by polars' CSV writer in chunks;
  geometries travel as EWKT text (``SRID=4326;POINT(…)``) and PostGIS parses them on input.
* SQLite: one prepared ``INSERT`` run with ``executemany`` over row tuples in chunks, inside the
  caller's transaction; geometries are built by SpatiaLite's ``GeomFromText(?, 4326)``.

A frame's columns must be named as the table's columns, except geometry: a line or any other
geometry is WKT text in the column named in ``geometry``; a point comes as two float columns
given in ``points`` (``{"geom": ("lon", "lat")}``), which SQLite turns into geometry with
``MakePoint`` — several times cheaper than parsing WKT. Datetimes are written as naive UTC.

>>> with engine.begin() as conn:  # doctest: +SKIP
...     bulk_insert(conn, "stations", frame, geometry=("geom",))
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import polars as pl
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from gridtopo.db.models import SRID
from gridtopo.errors import BulkLoadError

CHUNK_ROWS = 200_000
Point = tuple[str, str]
"""Names of the longitude and latitude columns that make one point geometry."""

ProgressFn = Callable[[int], None]


def _prepare(
    frame: pl.DataFrame, backend: str, geometry: Sequence[str], points: Mapping[str, Point]
) -> pl.DataFrame:
    """Cast values to what the backend's bulk path reads unambiguously."""
    if backend == "postgresql" and points:
        frame = frame.with_columns(
            point_wkt(pl.col(lon), pl.col(lat)).alias(column)
            for column, (lon, lat) in points.items()
        ).drop([c for pair in points.values() for c in pair])
        geometry = [*geometry, *points]
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
        elif isinstance(dtype, pl.Struct):
            casts.append(column.struct.json_encode().alias(name))
    return frame.with_columns(casts) if casts else frame


def bulk_insert(
    conn: Connection,
    table: str,
    frame: pl.DataFrame,
    *,
    geometry: Sequence[str] = (),
    points: Mapping[str, Point] | None = None,
    order_by: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> int:
    """Insert every row of ``frame`` into ``table`` on ``conn``; return the row count.

    Rows go in ``order_by`` order (key order makes B-tree inserts appends). The frame is
    converted chunk by chunk, so memory grows by one chunk, never by a copy of the frame.
    """
    if frame.is_empty():
        return 0
    backend = conn.dialect.name
    order = None
    if order_by and not frame.select(pl.struct(order_by).is_sorted()).item():
        order = frame.select(pl.arg_sort_by(order_by)).to_series()
    chunks = (
        _prepare(frame.slice(offset, CHUNK_ROWS) if order is None
                 else frame[order.slice(offset, CHUNK_ROWS)],
                 backend, geometry, points or {})
        for offset in range(0, frame.height, CHUNK_ROWS)
    )
    try:
        if backend == "postgresql":
            _copy_postgresql(conn, table, chunks, progress)
        else:
            _insert_sqlite(conn, table, chunks, geometry, points or {}, progress)
    except conn.dialect.loaded_dbapi.Error as err:
        reason = str(err).strip().splitlines()[0]
        raise BulkLoadError(f"loading {table} failed, nothing was changed: {reason}") from err
    return frame.height


def _copy_postgresql(
    conn: Connection, table: str, chunks: Iterator[pl.DataFrame], progress: ProgressFn | None
) -> None:
    first = next(chunks)
    columns = ", ".join(f'"{c}"' for c in first.columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("SET LOCAL TIME ZONE 'UTC'")
    sql = f'COPY "{table}" ({columns}) FROM STDIN (FORMAT csv, NULL \'\\N\')'
    with cursor.copy(sql) as copy:
        for chunk in itertools.chain([first], chunks):
            buffer = io.BytesIO()
            chunk.write_csv(buffer, include_header=False, null_value="\\N")
            copy.write(buffer.getvalue())
            if progress:
                progress(chunk.height)


def _insert_sqlite(
    conn: Connection,
    table: str,
    chunks: Iterator[pl.DataFrame],
    geometry: Sequence[str],
    points: Mapping[str, Point],
    progress: ProgressFn | None,
) -> None:
    first = next(chunks)
    coordinates = [c for pair in points.values() for c in pair]
    plain = [c for c in first.columns if c not in coordinates]
    values = [f"GeomFromText(?, {SRID})" if c in geometry else "?" for c in plain]
    values += [f"MakePoint(?, ?, {SRID})" for _ in points]
    columns = ", ".join(f'"{c}"' for c in [*plain, *points])
    sql = f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join(values)})'
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for chunk in itertools.chain([first], chunks):
        cursor.executemany(sql, chunk.select([*plain, *coordinates]).iter_rows())
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


TEXT_NULL = "\\N"
"""How a NULL travels in text rows (as PostgreSQL's COPY writes it)."""
BLOCK_ROWS = 200_000


def text_row(columns: Sequence[str]) -> str:
    """SQLite expression of one row as text: the values joined by the unit separator (0x1F),
    NULL as :data:`TEXT_NULL`. Values must not contain the separators (ids, numbers, codes)."""
    return " || char(31) || ".join(f"ifnull(CAST({c} AS TEXT), '{TEXT_NULL}')" for c in columns)


def parse_text_rows(block: str | None,
                    schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    """A block of :func:`text_row` rows joined by the record separator (0x1E) as a frame."""
    if not block:
        return pl.DataFrame(schema=dict(schema))
    return pl.read_csv(block.encode(), separator="\x1f", eol_char="\x1e", has_header=False,
                       new_columns=list(schema), schema_overrides=dict(schema),
                       null_values=TEXT_NULL, quote_char=None, infer_schema=False)


def read_table(conn: Connection, table: str,
               schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    """The ``schema`` columns (plain column names) of every row of ``table``, in storage order.

    On SQLite each block of rowids comes back as ONE text value that SQLite builds
    (``group_concat`` of :func:`text_row`) and polars parses — instead of a Python object per
    value, which made reading 14 million keys and hashes take a minute. Uses the caller's
    connection, so it sees the caller's transaction. PostgreSQL goes through :func:`read_frame`.
    """
    listed = ", ".join(f'"{c}"' for c in schema)
    if conn.dialect.name != "sqlite":
        return read_frame(conn, f'SELECT {listed} FROM "{table}"', dict(schema))
    low, high = conn.execute(text(f'SELECT min(rowid), max(rowid) FROM "{table}"')).one()
    if low is None:
        return pl.DataFrame(schema=dict(schema))
    sql = text(f'SELECT group_concat(line, char(30)) FROM (SELECT {text_row(list(schema))} '
               f'AS line FROM "{table}" WHERE rowid >= :lo AND rowid < :hi)')
    return pl.concat([
        parse_text_rows(conn.execute(sql, {"lo": start, "hi": start + BLOCK_ROWS}).scalar(),
                        schema)
        for start in range(low, high + 1, BLOCK_ROWS)
    ])


@contextmanager
def bulk_load_mode(
    conn: Connection, tables: Sequence[str], spatial: Mapping[str, str]
) -> Iterator[None]:
    """Make a large rewrite of ``tables`` fast, and leave them exactly as they were set up.

    Inside the block the tables' secondary indexes are set aside — on SQLite also their
    triggers, which SpatiaLite fires per row; on PostgreSQL also foreign-key and unique
    constraints, whose per-row checks cost more than one set-based validation afterwards.
    Then everything is recreated, and on SQLite each spatial index (``spatial`` maps table →
    geometry column) is rebuilt in one statement. All of it runs
    in the caller's transaction, so a failure rolls the definitions back with the data.
    """
    if conn.dialect.name == "sqlite":
        saved = conn.execute(
            text("SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                 "AND sql IS NOT NULL AND tbl_name IN (" + ", ".join(f"'{t}'" for t in tables)
                 + ")")
        ).all()
        for kind, name, _ in saved:
            conn.execute(text(f'DROP {kind.upper()} "{name}"'))
        conn.execute(text("PRAGMA cache_size = -1000000"))
        yield
        _check_foreign_keys(conn)
        for _, _, sql in sorted(saved, key=lambda row: row[0]):  # indexes before triggers
            conn.execute(text(sql))
        for table, column in spatial.items():
            # an R*Tree deletes row by row: recreating the empty virtual table is instant
            index = f"idx_{table}_{column}"
            rtree_sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"),
                                     {"n": index}).scalar_one()
            conn.execute(text(f'DROP TABLE "{index}"'))
            conn.execute(text(rtree_sql))
            conn.execute(text(
                f'INSERT INTO "{index}" (pkid, xmin, xmax, ymin, ymax) SELECT ROWID, '
                f'MbrMinX("{column}"), MbrMaxX("{column}"), MbrMinY("{column}"), '
                f'MbrMaxY("{column}") FROM "{table}" WHERE "{column}" IS NOT NULL'
            ))
        conn.execute(text("PRAGMA cache_size = -2000"))
        return
    constraints = conn.execute(
        text("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
             "FROM pg_constraint WHERE contype IN ('f', 'u') AND (conrelid::regclass::text = "
             "ANY(:t) OR confrelid::regclass::text = ANY(:t)) ORDER BY contype"),
        {"t": list(tables)},
    ).all()  # 'f' sorts before 'u': foreign keys go first, come back last
    for table, name, _, _ in constraints:
        conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    saved = conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
             "AND tablename = ANY(:tables) AND indexname NOT IN (SELECT conname FROM "
             "pg_constraint)"), {"tables": list(tables)}
    ).all()
    for name, _ in saved:
        conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in saved:
        conn.execute(text(definition))
    for table, name, definition, _ in reversed(constraints):
        try:
            with conn.begin_nested():
                conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
        except DBAPIError as err:
            reason = str(err.orig or err).strip().splitlines()[0]
            raise BulkLoadError(f"the loaded rows break {name} on {table}, nothing was "
                                f"changed: {reason}") from err
    for table in tables:
        conn.execute(text(f'ANALYZE "{table}"'))


@contextmanager
def foreign_keys_checked_at_end(conn: Connection) -> Iterator[None]:
    """On SQLite, have :func:`bulk_load_mode` check foreign keys once, after the rewrite,
    instead of row by row — open the transaction inside this block.

    SQLite enforces a foreign key on every insert (a lookup in the parent's index) and deletes
    from a parent table row by row (each delete looks for children): emptying and refilling 14
    million customers that way cost a minute more than the data. The pragma can only change
    outside a transaction, hence this separate step; PostgreSQL sets its constraints aside in
    :func:`bulk_load_mode` itself, so nothing happens there.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
    conn.commit()  # end SQLAlchemy's autobegun transaction: the caller begins its own
    try:
        yield
    finally:
        conn.rollback()  # whatever the caller left open
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        conn.commit()


def _check_foreign_keys(conn: Connection) -> None:
    """When foreign keys are off (:func:`foreign_keys_checked_at_end`), check the whole
    database now: a violation rolls the transaction back, as an enforced key would have."""
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        return
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({row[0] for row in broken})
        parents = sorted({row[2] for row in broken})
        raise BulkLoadError(
            f"the loaded rows break foreign keys of {', '.join(tables)}, nothing was changed: "
            f"{len(broken)} rows name a missing {', '.join(parents)} row "
            f"(first: {broken[0][0]} rowid {broken[0][1]})")


@contextmanager
def rollback_journal(engine: Engine) -> Iterator[bool]:
    """Run a large rewrite of a SQLite database with a rollback journal instead of the WAL.

    In WAL mode every page a transaction writes goes to the WAL and is copied into the
    database again by the checkpoint that follows the commit — for a full-size model, gigabytes
    written twice. With a rollback journal, pages appended to the file are written once and only
    pages that existed before are journaled. Switching needs the database to itself: when
    another connection has it open (a running ``gridtopo serve``), the block runs in WAL mode as
    before, so its readers are never blocked. A connection opened during the block waits for
    the commit (up to the 30 s busy timeout). Yields whether it switched; WAL is restored
    after. PostgreSQL is left alone (yields ``False``).
    """
    if engine.dialect.name != "sqlite":
        yield False
        return
    try:
        with engine.connect() as conn:
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            conn.exec_driver_sql("PRAGMA busy_timeout = 0")  # do not wait for a free database
            try:
                mode = conn.exec_driver_sql("PRAGMA journal_mode = DELETE").scalar()
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout or 0)}")
        switched = mode == "delete"
    except OperationalError:  # "database is locked": someone else has it open
        switched = False
    try:
        yield switched
    finally:
        if switched:
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            except OperationalError:  # a reader came in meanwhile; open_engine restores WAL
                pass
