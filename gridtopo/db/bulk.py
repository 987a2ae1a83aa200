"""Bulk writes of polars frames into the model, the fast way for each backend.

* PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` fed by polars' CSV writer in chunks;
  geometries travel as EWKT text (``SRID=4326;POINT(…)``) and PostGIS parses them on input.
* SQLite: one prepared ``INSERT`` run with ``executemany`` over row tuples in chunks, inside the
  caller's transaction; geometries are built by SpatiaLite's ``GeomFromText(?, 4326)``.

A frame's columns must be named as the table's columns, except geometry: a line or any other
geometry is WKT text in the column named in ``geometry``; a point comes as two float columns
given in ``points`` (``{"geom": ("lon", "lat")}``), which SQLite turns into geometry with
``MakePoint`` — several times cheaper than parsing WKT. Datetimes are written as naive UTC.

>>> stations = pl.DataFrame({"station_id": ["BDZ-9001"], "station_name": ["示例站"],
...                          "in_service": [True], "valid_from_run": [1], "row_hash": [0],
...                          "lon": [113.3], "lat": [23.1]})
>>> with engine.begin() as conn:
...     bulk_insert(conn, "stations", stations, points={"geom": ("lon", "lat")})
1
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
