"""Open a gridtopo database: URL resolution, spatial extensions, connection settings.

The store is chosen by a SQLAlchemy URL, from ``--db``, else ``GRIDTOPO_DB``, else
``sqlite:///gridtopo.db`` in the working directory. Two backends are supported:

* ``sqlite:///PATH`` — SQLite with SpatiaLite loaded into every connection (the embedded default);
* ``postgresql://…`` — PostgreSQL with PostGIS, through psycopg 3.

>>> resolve_url(None, environ={})
'sqlite:///gridtopo.db'
>>> backend_of("postgresql://u@h/db")
'postgresql'
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from gridtopo.errors import DatabaseUnavailableError, DatabaseURLError, SpatialExtensionError

DEFAULT_URL = "sqlite:///gridtopo.db"
ENV_VAR = "GRIDTOPO_DB"
SPATIALITE_MODULE = os.environ.get("SPATIALITE_LIBRARY_PATH", "mod_spatialite")

Backend = Literal["sqlite", "postgresql"]


def resolve_url(url: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Return the database URL to use: the explicit one, else ``$GRIDTOPO_DB``, else the default."""
    env = os.environ if environ is None else environ
    return url or env.get(ENV_VAR) or DEFAULT_URL


def parse_url(url: str) -> URL:
    """Parse and normalise ``url``; raise :class:`DatabaseURLError` naming it when unusable.

    ``postgresql://`` and ``postgres://`` are mapped to the psycopg 3 driver.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise DatabaseURLError(
            f"cannot parse database URL {url!r}: expected sqlite:///PATH or "
            "postgresql://USER@HOST/DB"
        ) from err
    name = parsed.get_backend_name()
    if name == "postgres":
        parsed = parsed.set(drivername="postgresql")
        name = "postgresql"
    if name == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2", "postgresql"):
            raise DatabaseURLError(f"unsupported PostgreSQL driver in {url!r}: use postgresql://")
        return parsed.set(drivername="postgresql+psycopg")
    if name == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseURLError(
                f"database URL {url!r} names no file: use sqlite:///PATH (an in-memory database "
                "would be lost when the command ends)"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise DatabaseURLError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def display_url(engine: Engine) -> str:
    """The database URL as a user would write it, without driver name or password."""
    url = engine.url.set(drivername=engine.url.get_backend_name())
    return url.render_as_string(hide_password=True)


def backend_of(url: str | URL) -> Backend:
    """``"sqlite"`` or ``"postgresql"`` for a URL gridtopo accepts."""
    parsed = parse_url(url) if isinstance(url, str) else url
    return "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"


def sqlite_dbapi() -> Any:
    """The DB-API module to use for SQLite: one that can load SpatiaLite.

    The standard library's ``sqlite3`` is used when the interpreter was built with extension
    loading; otherwise (e.g. pyenv builds) ``pysqlite3`` from ``pysqlite3-binary``.
    """
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        from pysqlite3 import dbapi2
    except ImportError as err:  # pragma: no cover - depends on the interpreter build
        raise SpatialExtensionError(
            "this Python's sqlite3 cannot load extensions and pysqlite3 is not installed: "
            "run `make setup` (or pip install pysqlite3-binary)"
        ) from err
    return dbapi2


@functools.cache
def bind_bundled_geo_libraries() -> None:
    """Import the wheels that bundle their own PROJ, GEOS and GDAL before SpatiaLite loads.

    SQLite loads extensions with ``RTLD_GLOBAL``, so SpatiaLite's system ``libproj`` and
    ``libgeos`` enter the process's global symbol scope. A wheel imported afterwards (pyproj,
    pyogrio) would bind its calls to those system libraries instead of its own copies, and the
    process corrupts memory (seen as "double free" at exit). Imported first, each wheel binds
    to its own copy and the two worlds never meet.
    """
    import pyogrio  # noqa: F401
    import pyproj  # noqa: F401
    import shapely  # noqa: F401


def load_spatialite(dbapi_conn: Any) -> None:
    """Load SpatiaLite into a raw SQLite DB-API connection (the bundled geo libraries first,
    see :func:`bind_bundled_geo_libraries`); :class:`SpatialExtensionError` when it cannot."""
    bind_bundled_geo_libraries()
    try:
        dbapi_conn.enable_load_extension(True)
        dbapi_conn.load_extension(SPATIALITE_MODULE)
        dbapi_conn.enable_load_extension(False)
    except Exception as err:  # the DB-API raises its own OperationalError class
        raise SpatialExtensionError(
            f"cannot load SpatiaLite ({SPATIALITE_MODULE}): {err}; install the Debian package "
            "libsqlite3-mod-spatialite (`make setup` does) or set SPATIALITE_LIBRARY_PATH"
        ) from err


BUSY_MS = 30_000
"""How long a SQLite statement waits for another connection's lock by default."""


def _on_sqlite_connect(busy_ms: int) -> Any:
    """The connect hook: load SpatiaLite and set per-connection pragmas on every new SQLite
    connection (a lock is waited for ``busy_ms``)."""
    def hook(dbapi_conn: Any, _record: Any) -> None:
        load_spatialite(dbapi_conn)
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        dbapi_conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")
    return hook


def _wal_unless_loading(conn: Any, busy_ms: int) -> None:
    """Put the SQLite file in WAL mode — unless a load holds it in rollback-journal mode
    (:func:`gridtopo.db.bulk.rollback_journal`), which puts WAL back itself: the switch needs
    the file to itself, and waiting for it would make every command wait on the load."""
    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        conn.exec_driver_sql("PRAGMA journal_mode = WAL")
    except OperationalError:
        conn.rollback()
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")


def sqlite_path(url: URL) -> Path:
    """The file a SQLite URL points at."""
    assert url.database is not None
    return Path(url.database)


def open_engine(url: str | None = None, *, create: bool = False, echo: bool = False,
                lock_wait_ms: int | None = None) -> Engine:
    """Create an :class:`~sqlalchemy.Engine` for a gridtopo database and check it can connect.

    ``create=False`` refuses to create a new SQLite file, so that a mistyped path is reported
    instead of leaving an empty database behind. ``lock_wait_ms`` bounds how long a statement
    waits for another connection's lock (SQLite ``busy_timeout``, PostgreSQL
    ``lock_timeout``; default 30 s on SQLite, no bound on PostgreSQL): commands that only
    report (``runs``, ``info``) pass a short one, so that they never wait on a load. Opening
    never waits to put a SQLite file back into WAL mode while a load holds it. Raises
    :class:`DatabaseURLError`, :class:`DatabaseUnavailableError` or
    :class:`SpatialExtensionError` with a one-line reason.
    """
    raw = resolve_url(url)
    parsed = parse_url(raw)
    if backend_of(parsed) == "sqlite":
        path = sqlite_path(parsed)
        if not path.parent.exists():
            raise DatabaseUnavailableError(
                f"cannot open SQLite database {str(path)!r}: directory {str(path.parent)!r} "
                "does not exist"
            )
        if not create and not path.exists():
            raise DatabaseUnavailableError(
                f"no gridtopo database at {str(path)!r}: run `gridtopo init` first, or pass --db"
            )
        engine = create_engine(parsed, module=sqlite_dbapi(), echo=echo)
        busy = BUSY_MS if lock_wait_ms is None else lock_wait_ms
        event.listen(engine, "connect", _on_sqlite_connect(busy))
        journal_wal = True
    else:
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if lock_wait_ms is not None:
            connect_args["options"] = f"-c lock_timeout={int(lock_wait_ms)}"
        engine = create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)
        journal_wal = False
    try:
        with engine.connect() as conn:
            if journal_wal:
                _wal_unless_loading(conn, busy)
            conn.execute(text("SELECT 1"))
    except OperationalError as err:
        engine.dispose()
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        raise DatabaseUnavailableError(
            f"cannot connect to {parsed.render_as_string(hide_password=True)}: {reason}"
        ) from err
    return engine
