"""Fixtures that give every test a real database on both backends.

* ``backend`` is parametrised over ``sqlite`` (a SpatiaLite file under ``tmp_path``) and
  ``postgresql`` (a throw-away database on the local server, with PostGIS).
* ``empty_db_url`` is a database with no schema; ``db_url`` one migrated to head (cloned from a
  per-session template, so each test starts from a clean, current schema cheaply).

PostgreSQL comes from ``$GRIDTOPO_TEST_PG`` (an admin URL, default the local ``postgres``
superuser). When it cannot be reached the PostgreSQL tests skip, except under ``CI=true``, where
they fail: CI must exercise both stores.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from gridtopo.db import open_engine, upgrade
from gridtopo.topology.index import QueryIndex, load_index

if TYPE_CHECKING:
    from tests.test_outage_events import Oracle

PG_ADMIN_URL = os.environ.get(
    "GRIDTOPO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ("sqlite", "postgresql")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every PostgreSQL-parametrised test ``postgres`` so ``-m 'not postgres'`` works."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgresql":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the PostgreSQL server, to create and drop test databases."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as err:
        engine.dispose()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {err.orig}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, run `make setup`)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _create_pg_database(admin: Engine, template: str | None = None) -> str:
    name = f"gridtopo_test_{uuid.uuid4().hex[:12]}"
    clause = f" TEMPLATE {template}" if template else ""
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}{clause}"))
    return name


def _drop_pg_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store under test: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new, empty database (no schema) on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'gridtopo.db'}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = _create_pg_database(admin)
    try:
        yield _pg_url(name)
    finally:
        _drop_pg_database(admin, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "gridtopo.db"
    engine = open_engine(f"sqlite:///{path}", create=True)
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session, used as CREATE DATABASE template."""
    name = _create_pg_database(pg_admin)
    engine = open_engine(_pg_url(name))
    upgrade(engine)
    engine.dispose()
    try:
        yield name
    finally:
        _drop_pg_database(pg_admin, name)


def _clone(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
           sqlite_template: str, pg_template: str) -> Iterator[str]:
    """URL of a fresh copy of a template database (a file copy, or CREATE DATABASE TEMPLATE)."""
    if backend == "sqlite":
        path = tmp_path / "gridtopo.db"
        shutil.copyfile(request.getfixturevalue(sqlite_template), path)
        yield f"sqlite:///{path}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = _create_pg_database(admin, template=request.getfixturevalue(pg_template))
    try:
        yield _pg_url(name)
    finally:
        _drop_pg_database(admin, name)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh database with the current schema on ``backend``."""
    yield from _clone(backend, tmp_path, request, "sqlite_template", "pg_template")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An open engine on a fresh, migrated database."""
    eng = open_engine(db_url)
    yield eng
    eng.dispose()


# --------------------------------------------------------------------------- an ingested model

MODEL_CUSTOMERS = 3000
MODEL_SEED = 42


@pytest.fixture(scope="session")
def synthetic_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated exports of both systems (default defects) with ``truth/``, once per session."""
    from gridtopo.synthetic import generate

    out = tmp_path_factory.mktemp("synthetic") / "sources"
    generate(out, MODEL_CUSTOMERS, seed=MODEL_SEED)
    return out


def _ingest(url: str, sources: Path) -> None:
    from gridtopo.pipeline import ingest

    engine = open_engine(url, create=True)
    upgrade(engine)
    ingest(engine, sources)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_model_template(
    tmp_path_factory: pytest.TempPathFactory, synthetic_sources: Path
) -> Path:
    """A SQLite database holding the ingested ``synthetic_sources``, built once per session."""
    path = tmp_path_factory.mktemp("model") / "gridtopo.db"
    _ingest(f"sqlite:///{path}", synthetic_sources)
    engine = open_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_model_template(pg_admin: Engine, synthetic_sources: Path) -> Iterator[str]:
    """A PostgreSQL database holding the ingested ``synthetic_sources``, used as a template."""
    name = _create_pg_database(pg_admin)
    _ingest(_pg_url(name), synthetic_sources)
    try:
        yield name
    finally:
        _drop_pg_database(pg_admin, name)


@pytest.fixture
def model_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh copy of the ingested synthetic model on ``backend``."""
    yield from _clone(backend, tmp_path, request, "sqlite_model_template", "pg_model_template")


@pytest.fixture
def model_engine(model_db_url: str) -> Iterator[Engine]:
    """An open engine on a fresh copy of the ingested synthetic model."""
    eng = open_engine(model_db_url)
    yield eng
    eng.dispose()


# ------------------------------------------------ a model with some ten feeders (load flows)

FEEDERS_CUSTOMERS = 12_000
FEEDERS_SEED = 5


@pytest.fixture(scope="session")
def feeders_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated exports of a province of ten feeders, once per session."""
    from gridtopo.synthetic import generate

    out = tmp_path_factory.mktemp("feeders") / "sources"
    generate(out, FEEDERS_CUSTOMERS, seed=FEEDERS_SEED)
    return out


@pytest.fixture(scope="session")
def sqlite_feeders_template(tmp_path_factory: pytest.TempPathFactory,
                            feeders_sources: Path) -> Path:
    """A SQLite database holding the ingested ``feeders_sources``."""
    path = tmp_path_factory.mktemp("feeders_model") / "gridtopo.db"
    _ingest(f"sqlite:///{path}", feeders_sources)
    engine = open_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_feeders_template(pg_admin: Engine, feeders_sources: Path) -> Iterator[str]:
    """A PostgreSQL database holding the ingested ``feeders_sources``, used as a template."""
    name = _create_pg_database(pg_admin)
    _ingest(_pg_url(name), feeders_sources)
    try:
        yield name
    finally:
        _drop_pg_database(pg_admin, name)


@pytest.fixture
def feeders_engine(backend: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on a fresh copy of the ten-feeder model on ``backend``."""
    for url in _clone(backend, tmp_path, request, "sqlite_feeders_template",
                      "pg_feeders_template"):
        eng = open_engine(url)
        yield eng
        eng.dispose()


# ------------------------------------------- the ingested model's index and its oracle


@pytest.fixture
def index(model_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QueryIndex:
    """The query index of ``model_engine``'s model."""
    monkeypatch.chdir(tmp_path)  # a PostgreSQL index is written to the working directory
    return load_index(model_engine)


@pytest.fixture
def oracle(model_engine: Engine) -> Oracle:
    """Who is out when devices open, by networkx over ``model_engine``'s rows."""
    from tests.test_outage_events import Oracle

    return Oracle(model_engine)
