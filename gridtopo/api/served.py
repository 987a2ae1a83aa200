"""The model an API worker serves, and the one place it changes: :class:`ServedModel`.

A worker answers from a :class:`ModelSnapshot` — the query index of one model, the
:class:`ModelVersion` of the database it was loaded from, and a ``generation`` counting the
swaps this worker made. A request takes the current snapshot once and answers from it to the
end, so no answer mixes two models. :meth:`ServedModel.refresh` notices that the database
holds another model — a new committed ingest run, polled every ``poll_seconds`` by a
background thread — loads that model's index (built and saved when stale, in a child process
so that requests go on, by one worker at a time: :func:`~gridtopo.topology.index.index_lock`)
and swaps it in with one assignment (:meth:`ServedModel.swap`). A switching change
(:mod:`gridtopo.topology.switching`) is a run of its own: the worker that records it saves
the updated index under the lock before releasing it, so every worker's next poll
(``POLL_SECONDS``) swaps to it.

What a request reads live from the database (customers' names and phones) must belong to the
served model: :meth:`ServedModel.consistent` runs such a read only while the database still
holds the served model's load (checked before and after), and otherwise waits for the swap
and answers from the new snapshot.

Which model the database holds, :class:`ModelVersion`, is read in one query: the newest
succeeded ingest run (:func:`~gridtopo.db.runs.model_run`, what the index is stamped with)
and the newest ``snapshots`` row, which an ingest writes in the very transaction that
replaces the model — so it changes exactly when the model's rows do, even before the run is
marked succeeded.

>>> ModelVersion(run=3, load=2, load_run=3).settled
True
>>> ModelVersion(run=3, load=3, load_run=4).settled  # run 4 committed, not yet marked
False
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, func, select

from gridtopo.api.errors import RetryLaterError
from gridtopo.clock import utcnow
from gridtopo.db.models import IngestRun, Snapshot
from gridtopo.errors import GridtopoError
from gridtopo.topology.index import (
    IndexMissingError,
    QueryIndex,
    index_dir,
    index_lock,
    load_index,
    read_index,
)
from gridtopo.topology.index.store import is_current, stamped

__all__ = ["ModelSnapshot", "ModelSwitchingError", "ModelVersion", "ServedModel", "index_lock",
           "model_version"]

POLL_SECONDS = 0.2
"""How often a worker asks the database whether it holds another model (one cheap query): a
switching change is served by every worker within this time plus a memory-mapped load."""
SWITCH_WAIT_SECONDS = 10.0
"""How long a request reading live rows waits for its worker to swap to the database's new
model before it answers 503 (``Retry-After``)."""
CHILD_BUILD_CUSTOMERS = 500_000
"""From this model size on (customers), a worker builds a stale index in a child process."""
log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelSwitchingError(RetryLaterError):
    """The database holds a newer model than this worker serves yet (503, retry shortly)."""

    http_status = 503


@dataclass(frozen=True)
class ModelVersion:
    """Which model a database holds: ``run`` the newest succeeded ingest run, ``load`` the
    id of the newest ``snapshots`` row (0 before any) and ``load_run`` the run that wrote it."""

    run: int
    load: int
    load_run: int

    @property
    def settled(self) -> bool:
        """Whether the newest model load belongs to a run marked succeeded: between an
        ingest's commit and its run's end the index would be stamped with the older run."""
        return self.load_run <= self.run


def model_version(engine: Engine) -> ModelVersion:
    """The :class:`ModelVersion` of ``engine``'s database, in one cheap query."""
    newest = select(Snapshot).order_by(Snapshot.id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(select(
            select(func.max(IngestRun.id)).where(IngestRun.status == "succeeded")
            .scalar_subquery(),
            newest.with_only_columns(Snapshot.id).scalar_subquery(),
            newest.with_only_columns(Snapshot.run_id).scalar_subquery())).one()
    return ModelVersion(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


BUILD_SCRIPT = ("import os; from gridtopo.db import open_engine; from gridtopo.topology.index "
                "import build_index, index_dir, save_index; "
                "engine = open_engine(os.environ['GRIDTOPO_INDEX_DB']); "
                "save_index(build_index(engine), index_dir(engine))")


class IndexBuildError(GridtopoError):
    """Building the index in a child process failed (the poller logs it and tries again)."""


def current_index(engine: Engine, *, in_child: bool) -> QueryIndex:
    """The saved index of ``engine``'s model, built and saved first when it is stale — with
    ``in_child`` in a child process, so that this worker's requests are not held up by the
    build (it holds the interpreter lock for seconds on a large model; a child costs a few
    seconds to start, which a small model's build does not). Call under :func:`index_lock`."""
    try:
        index = read_index(index_dir(engine))
        if is_current(index, engine):
            return index
    except IndexMissingError:
        pass
    if not in_child:
        return load_index(engine, rebuild=True)
    env = {**os.environ, "GRIDTOPO_INDEX_DB": engine.url.render_as_string(hide_password=False)}
    done = subprocess.run([sys.executable, "-c", BUILD_SCRIPT], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise IndexBuildError(f"building the index failed: {done.stderr.strip()[-2000:]}")
    return read_index(index_dir(engine))


@dataclass(frozen=True)
class ModelSnapshot:
    """One model as a worker serves it: never changed, only replaced (see the module)."""

    index: QueryIndex
    version: ModelVersion
    generation: int
    loaded_at: dt.datetime

    @property
    def run(self) -> int:
        """The ingest run the index describes."""
        run = self.index.meta.get("ingest_run")
        return run if isinstance(run, int) else 0

    @property
    def switching_version(self) -> int:
        """The newest switching change the index includes (0: none)."""
        version = self.index.meta.get("switching_version")
        return version if isinstance(version, int) else 0

    def describe(self) -> dict[str, object]:
        """What ``/health`` says about it, with this worker's process id."""
        return {"ingest_run": self.run, "switching_version": self.switching_version,
                "generation": self.generation,
                "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
                "worker": os.getpid()}


class ServedModel:
    """The model one worker serves; see the module docstring.

    ``index`` given: served as the database's current model (tests, ``serve --index``);
    otherwise loaded (or built) under :func:`index_lock`. With ``follow`` false the snapshot
    never changes and live reads are not checked — for an index that is not the database's.
    """

    def __init__(self, engine: Engine, index: QueryIndex | None = None, *, follow: bool = True,
                 poll_seconds: float = POLL_SECONDS,
                 switch_wait_seconds: float = SWITCH_WAIT_SECONDS) -> None:
        self.engine = engine
        self.follow = follow
        self.poll_seconds = poll_seconds
        self.switch_wait_seconds = switch_wait_seconds
        version = model_version(engine)
        if index is None:
            with index_lock(engine):
                index = load_index(engine)
        self._current = ModelSnapshot(index, version, 1, utcnow())
        self._refreshing = threading.Lock()
        self._swapped = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def current(self) -> ModelSnapshot:
        """The snapshot to answer a request from (take it once per request)."""
        return self._current

    def swap(self, index: QueryIndex, version: ModelVersion) -> ModelSnapshot:
        """Serve ``index`` (of the model ``version``) from now on: one assignment, so a
        request sees the old snapshot or the new one, never a mix. Returns the new one."""
        with self._swapped:
            old = self._current
            self._current = ModelSnapshot(index, version, old.generation + 1, utcnow())
            self._swapped.notify_all()
        log.warning("serving ingest run %s, switching version %s (generation %s) instead of "
                    "run %s", self._current.run, self._current.switching_version,
                    self._current.generation, old.run)
        return self._current

    def refresh(self) -> bool:
        """Swap to the database's model if it holds another one than served; True if swapped.

        The index is loaded — or built and saved, when stale — under :func:`index_lock`; the
        database's version is read before and after, and the swap is left to the next call
        when it changed meanwhile (an ingest committed during the build) or is not settled."""
        if not self.follow:
            return False
        with self._refreshing:
            before = model_version(self.engine)
            if before == self._current.version or not before.settled:
                return False
            large = self._current.index.meta.get("customers", 0)
            with index_lock(self.engine):
                index = current_index(self.engine, in_child=isinstance(large, int) and
                                      large >= CHILD_BUILD_CUSTOMERS)
            if model_version(self.engine) != before or \
                    not stamped(index, before.run, before.load):
                return False
            self.swap(index, before)
            return True

    def consistent(self, answer: Callable[[ModelSnapshot], T]) -> T:
        """``answer(snapshot)`` for a read that joins the database's live rows to the index
        (names and phones of listed customers): run while the database holds the snapshot's
        model load, checked before and after; else after waiting for the swap to the new
        model, up to ``switch_wait_seconds`` — then :class:`ModelSwitchingError` (503)."""
        if not self.follow:
            return answer(self._current)
        deadline = time.monotonic() + self.switch_wait_seconds
        while True:
            snapshot = self._current
            if model_version(self.engine).load == snapshot.version.load:
                result = answer(snapshot)
                if model_version(self.engine).load == snapshot.version.load:
                    return result
            if not self._await_swap(snapshot, deadline):
                raise ModelSwitchingError(
                    "the database holds a newer model than this worker serves yet: retry in "
                    "a few seconds", retry_after=max(1, round(self.poll_seconds * 2)))

    def _await_swap(self, seen: ModelSnapshot, deadline: float) -> bool:
        """Wait until a swap replaces ``seen`` — woken poller's, or without a poller this
        thread's own :meth:`refresh`; False when ``deadline`` (monotonic) passed first."""
        while self._current is seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._poller is None:
                self.refresh()
                if self._current is seen:
                    time.sleep(min(left, 0.05))
                continue
            self._wake.set()
            with self._swapped:
                self._swapped.wait(min(left, 0.05))
        return True

    # ------------------------------------------------------------------ the poller

    def start(self) -> None:
        """Start the background thread that calls :meth:`refresh` every ``poll_seconds``
        (at once when a request waits for a swap)."""
        if not self.follow or self._poller is not None:
            return
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="gridtopo-model-poll",
                                        daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop the poller (waiting for a load under way)."""
        poller, self._poller = self._poller, None
        if poller is not None:
            self._stop.set()
            self._wake.set()
            poller.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception:  # a dropped connection, a full disk: serve on, try again
                log.exception("could not check for, or load, a new model")
