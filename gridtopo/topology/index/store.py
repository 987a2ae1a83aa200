"""The query index on disk: one ``.npy`` file per array plus ``meta.json``, memory-mapped.

The directory sits next to the database (:func:`index_dir`): ``PATH.db.index/`` for
``sqlite:///PATH.db``, ``./DBNAME.index/`` in the working directory for PostgreSQL. Arrays are
memory-mapped on load, so loading is instant at any size. ``meta.json`` records the format
(:data:`FORMAT_VERSION`, raised whenever the arrays or their meaning change) and the model
the index describes (ingest run, model load, switching version); :func:`load_index`
rebuilds an index of another format or another model.

>>> from sqlalchemy import create_engine
>>> str(index_dir(create_engine("sqlite:////srv/grid/model.db")))
'/srv/grid/model.db.index'

"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from gridtopo.db.engine import backend_of, sqlite_path
from gridtopo.db.switching import model_stamp
from gridtopo.errors import GridtopoError
from gridtopo.topology.index.build import build_index
from gridtopo.topology.index.structure import QueryIndex

FORMAT_VERSION = 3
"""3: every supply node roots its own tree, pieces and supply entries (multi-source)."""

ARRAYS = tuple(name for name in QueryIndex.__dataclass_fields__ if name not in
               ("n_energized", "meta"))


class IndexMissingError(GridtopoError):
    """No usable index file where one was required."""

    http_status = 503


def index_dir(engine: Engine) -> Path:
    """Where the index of ``engine``'s database lives (see the module docstring)."""
    if backend_of(engine.url) == "sqlite":
        path = sqlite_path(engine.url)
        return path.with_name(path.name + ".index")
    return Path.cwd() / f"{engine.url.database}.index"


@contextmanager
def index_lock(engine: Engine) -> Iterator[None]:
    """Hold the lock on ``engine``'s index directory (a ``.lock`` file beside it): the
    workers of a server, ``gridtopo index build`` and a switching change build, update or
    read the index one at a time, so that none reads a half-renamed directory and no two
    write the same temporary one."""
    path = index_dir(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def save_index(index: QueryIndex, directory: Path, *, unchanged: Collection[str] = ()
               ) -> Path:
    """Write ``index`` to ``directory`` atomically (a new directory renamed into place).

    ``unchanged`` names arrays equal to those saved in ``directory`` now: their files are
    hard-linked into the new directory instead of written again (a switching change rewrites
    the switching-dependent arrays only)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ARRAYS:
        target = tmp / f"{name}.npy"
        if name in unchanged:
            try:
                os.link(directory / f"{name}.npy", target)
                continue
            except OSError:
                pass
        np.save(target, getattr(index, name), allow_pickle=False)
    meta = {"format": FORMAT_VERSION, **index.meta, "n_energized": index.n_energized}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def read_index(directory: Path) -> QueryIndex:
    """Memory-map a saved index; :class:`IndexMissingError` when absent or another format."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise IndexMissingError(f"no index at {directory}: run `gridtopo index build`") from err
    if meta.get("format") != FORMAT_VERSION:
        raise IndexMissingError(f"index at {directory} has format {meta.get('format')}, this "
                                f"gridtopo reads {FORMAT_VERSION}: run `gridtopo index build`")
    # plain ndarray views of the maps: numpy's memmap subclass costs microseconds per index
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
              .view(np.ndarray) for name in ARRAYS}
    return QueryIndex(**arrays, n_energized=int(meta.pop("n_energized")), meta=meta)


def is_current(index: QueryIndex, engine: Engine) -> bool:
    """Whether ``index`` describes the model ``engine``'s database holds now."""
    with engine.connect() as conn:
        stamp = model_stamp(conn)
    return stamped(index, stamp.run, stamp.load)


def stamped(index: QueryIndex, run: int, load: int) -> bool:
    """Whether ``index`` is stamped with ingest run ``run`` and model load ``load``."""
    return index.meta.get("ingest_run") == run and index.meta.get("load") == load


def load_index(engine: Engine, *, rebuild: bool = False) -> QueryIndex:
    """The index of ``engine``'s model: read from disk, or built and saved when it is missing,
    stale (another ingest run, model load or switching change, or another format) or
    ``rebuild`` is asked for."""
    directory = index_dir(engine)
    if not rebuild:
        try:
            index = read_index(directory)
        except IndexMissingError:
            pass
        else:
            if is_current(index, engine):
                return index
    index = build_index(engine)
    save_index(index, directory)
    return read_index(directory)
