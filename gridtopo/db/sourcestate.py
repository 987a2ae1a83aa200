"""The sources of the live model as the last run read them, kept next to the database.

A change file (增量) says only what changed; to reconcile the model exactly as a full ingest of
the same sources would, the run needs every other row as well. Reading them back from the
database would mean undoing every conversion of the load (points, lines, personal data kept
apart); instead each run keeps the canonical tables it reconciled as Parquet files
(:func:`save_state`) — without the personal fields, of which only a fingerprint per customer
is kept (:func:`gridtopo.db.delta.personal_hashes`): names, addresses and phones stay in the
database — plus the derived ``nodes`` rows it wrote. ``_file`` holds the ingest-file id of the row's
source (not the index into one run's files), so rows of several runs mix.

The state belongs to one run of one database (``meta.json``: run id, database). A run whose
state is missing or belongs to another run (a run failed after its commit, a restored backup)
falls back to the full load; a change file then needs a full ingest first.

>>> from sqlalchemy import create_engine
>>> str(state_dir(create_engine("sqlite:////srv/grid/model.db")))
'/srv/grid/model.db.state'
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from gridtopo.db.engine import backend_of, sqlite_path

FORMAT = 1
"""Raised when what the state holds changes; another format reads as no state."""


@dataclass(frozen=True)
class KeptState:
    """Canonical tables (without personal fields), derived nodes, and personal fingerprints
    of the model of run ``run_id``."""

    run_id: int
    tables: dict[str, pl.DataFrame]
    nodes: pl.DataFrame
    personal: pl.DataFrame


def state_dir(engine: Engine) -> Path:
    """Where the kept sources of ``engine``'s database live: ``PATH.db.state/`` next to a
    SQLite file, ``./DBNAME.state/`` in the working directory for PostgreSQL (as the index)."""
    if backend_of(engine.url) == "sqlite":
        path = sqlite_path(engine.url)
        return path.with_name(path.name + ".state")
    return Path.cwd() / f"{engine.url.database}.state"


def save_state(state: KeptState, directory: Path) -> None:
    """Write ``state`` atomically (a new directory renamed into place)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, frame in state.tables.items():
        frame.write_parquet(tmp / f"{name}.parquet", compression="lz4")
    state.nodes.write_parquet(tmp / "_nodes.parquet", compression="lz4")
    state.personal.write_parquet(tmp / "_personal.parquet", compression="lz4")
    (tmp / "meta.json").write_text(json.dumps(
        {"format": FORMAT, "run_id": state.run_id, "tables": sorted(state.tables)}))
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def restamp_state(directory: Path, run_id: int) -> None:
    """Move the state to ``run_id`` (a run that left the model as it was)."""
    meta_path = directory / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return
    tmp = meta_path.with_name("meta.json.tmp")
    tmp.write_text(json.dumps({**meta, "run_id": run_id}))
    tmp.replace(meta_path)


def read_state(directory: Path, run_id: int | None, *, tables: bool = True
               ) -> KeptState | None:
    """The state kept for the model of run ``run_id``, or None (missing, stale, other format);
    without its canonical ``tables`` unless asked (a full re-export brings its own)."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT or run_id is None or meta.get("run_id") != run_id:
        return None
    try:
        frames = {name: pl.read_parquet(directory / f"{name}.parquet")
                  for name in meta["tables"]} if tables else {}
        nodes = pl.read_parquet(directory / "_nodes.parquet")
        personal = pl.read_parquet(directory / "_personal.parquet")
    except OSError:
        return None
    return KeptState(run_id=run_id, tables=frames, nodes=nodes, personal=personal)
