"""Doctests run against a real model: every ``>>>`` example in ``gridtopo/`` sees

* ``engine`` — an open SQLite+SpatiaLite engine on a fresh copy of a small ingested synthetic
  model (2,500 customers on two feeders joined by a tie, seed 7; built once per session,
  copied for each module);
* ``url`` — that database's URL; ``sources`` — the generated exports it was ingested from;
* ``Path``, ``pl`` (polars) and ``dt`` (datetime);

and runs in its own temporary working directory, so examples may write files.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from _pytest.doctest import DoctestItem

DOCTEST_CUSTOMERS = 2500
DOCTEST_SEED = 7


@pytest.fixture(scope="session")
def doctest_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(database file, sources folder) of the doctests' model, built once per session."""
    from gridtopo.db import open_engine, upgrade
    from gridtopo.pipeline import ingest
    from gridtopo.synthetic import generate

    root = tmp_path_factory.mktemp("doctest-model")
    sources = root / "sources"
    generate(sources, DOCTEST_CUSTOMERS, seed=DOCTEST_SEED)
    path = root / "gridtopo.db"
    engine = open_engine(f"sqlite:///{path}", create=True)
    upgrade(engine)
    ingest(engine, sources)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path, sources


@pytest.fixture(autouse=True)
def _doctest_namespace(request: pytest.FixtureRequest, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not isinstance(request.node, DoctestItem):
        yield
        return
    from gridtopo.db import open_engine

    template, sources = request.getfixturevalue("doctest_model")
    path = tmp_path / "gridtopo.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    engine = open_engine(url)
    namespace = request.getfixturevalue("doctest_namespace")
    namespace.update(engine=engine, url=url, sources=sources, Path=Path, pl=pl, dt=dt)
    monkeypatch.chdir(tmp_path)
    yield
    engine.dispose()
