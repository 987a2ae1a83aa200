"""Run the Alembic migrations of ``migrations/`` against an open engine.

``gridtopo init`` and ``gridtopo db upgrade`` call :func:`upgrade`; tests call
:func:`downgrade` too. Both backends share the one migration history.

>>> head_revision()  # doctest: +SKIP
'0001'
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from gridtopo.errors import SchemaError, SpatialExtensionError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config() -> Config:
    """The Alembic configuration of the gridtopo source tree."""
    if not MIGRATIONS_DIR.is_dir():
        raise SchemaError(
            f"migrations not found at {MIGRATIONS_DIR}: gridtopo must run from its source tree "
            "(pip install -e .)"
        )
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest migration revision this version of gridtopo knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for a database never initialised."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _run(engine: Engine, action: str, revision: str) -> None:
    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    except DBAPIError as err:
        message = str(err.orig or err).strip().splitlines()[0]
        if "postgis" in message.lower():
            raise SpatialExtensionError(
                f"PostGIS is not available on this PostgreSQL server ({message}): install "
                "postgresql-<version>-postgis-3 (`make setup` does) or ask the DBA to run "
                "CREATE EXTENSION postgis"
            ) from err
        raise SchemaError(f"migration {action} to {revision} failed: {message}") from err
    except Exception as err:
        if type(err).__module__.startswith("alembic"):
            raise SchemaError(f"cannot {action} to revision {revision!r}: {err}") from err
        raise


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate the database up to ``revision``; return the revision it is at afterwards."""
    _run(engine, "upgrade", revision)
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Migrate the database down to ``revision`` (``"base"`` removes every table)."""
    _run(engine, "downgrade", revision)
    return current_revision(engine)


def require_current(engine: Engine) -> None:
    """Raise :class:`SchemaError` unless the database is at the head revision.

    Commands that read or write the model call this first, so that a never-initialised or
    outdated database gets one clear instruction instead of a missing-table error.
    """
    current, head = current_revision(engine), head_revision()
    if current is None:
        raise SchemaError("the database has no gridtopo schema: run `gridtopo init` first")
    if current != head:
        raise SchemaError(
            f"the database schema is at revision {current}, this gridtopo needs {head}: "
            "run `gridtopo db upgrade`"
        )
