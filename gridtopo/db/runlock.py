"""One ingest at a time per database, and runs whose process died marked ``interrupted``.

An ingest holds the database's *ingest lock* from before its run row exists until its model
has committed: on PostgreSQL a session advisory lock (:data:`ADVISORY_KEY`) on a connection of
its own, on SQLite an ``flock`` on ``PATH.db.ingest-lock`` next to the database file. Both are
released by the operating system or the server the moment the process ends, however it ends
(``kill -9``, a crash, a lost connection), so a free lock proves that no ingest is alive.

A second ingest is refused with :class:`~gridtopo.errors.RunInProgressError` — ``run N by
USER since T is in progress (pid P on HOST)`` — or, with ``wait=True``, waits for the lock.
The lock file also holds that description, so that the refusal (and ``gridtopo runs`` during
a load) never has to read a database that a SQLite load holds locked.

Whoever holds the lock — an ingest that just got it, or :func:`reap_interrupted`, which
``gridtopo runs`` and ``info`` call and which takes the lock only if it is free — marks every
run still ``running`` as ``interrupted``: its process is gone, its transaction was rolled
back, and the previous model is intact.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import OperationalError

from gridtopo.clock import as_utc, utcnow
from gridtopo.db.engine import backend_of, sqlite_path
from gridtopo.db.models import IngestRun
from gridtopo.errors import RunInProgressError

ADVISORY_KEY = 0x67726964_696E6765  # "gridinge": the ingest lock's PostgreSQL advisory key
"""Session advisory lock key of the ingest lock on PostgreSQL."""
APP_PREFIX = "gridtopo-ingest"
"""``application_name`` prefix of the connection holding the PostgreSQL ingest lock."""


def lock_path(engine: Engine) -> Path:
    """The lock file of a SQLite database: ``PATH.db.ingest-lock``."""
    path = sqlite_path(engine.url)
    return path.with_name(path.name + ".ingest-lock")


class IngestLock:
    """The ingest lock of one database, held between :meth:`acquire` and :meth:`release`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = backend_of(engine.url) == "sqlite"
        self._file: IO[str] | None = None
        self._conn: Connection | None = None

    def acquire(self, *, wait: bool = False) -> bool:
        """Take the lock; False when another process holds it (and ``wait`` is not set)."""
        if self.sqlite:
            handle = lock_path(self.engine).open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
        elif not conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                              {"k": ADVISORY_KEY}).scalar():
            conn.close()
            return False
        self._conn = conn
        return True

    def describe(self, run_id: int, user: str | None, started: dt.datetime, pid: int,
                 host: str | None) -> None:
        """Note who holds the lock where a refused run reads it without touching the run
        table (which a PostgreSQL load locks): the lock file, or on PostgreSQL the lock
        connection's ``application_name``."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(describe_run(run_id, user, started, pid, host))
            self._file.flush()
        if self._conn is not None:
            noted = "|".join([APP_PREFIX, str(run_id), user or "", str(pid), host or ""])
            self._conn.execute(text("SELECT set_config('application_name', :v, false)"),
                               {"v": noted[:63]})

    def holder(self) -> str:
        """Who holds the lock, as :meth:`describe` noted it."""
        if self.sqlite:
            try:
                noted = lock_path(self.engine).read_text(encoding="utf-8").strip()
            except OSError:
                noted = ""
            return noted or "another ingest of this database is in progress"
        with self.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN "
                "pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND "
                "l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                "current_database()) AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"),
                {"k": ADVISORY_KEY}).first()
        parts = (row.application_name or "").split("|") if row else []
        if row is None or len(parts) != 5 or parts[0] != APP_PREFIX:
            return "another ingest of this database is in progress"
        _, run_id, user, pid, host = parts
        return describe_run(int(run_id), user, row.backend_start, int(pid), host)

    def release(self) -> None:
        """Let the lock go (the process ending does the same)."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self._conn.close()
            self._conn = None


READ_WAIT_MS = 200
"""How long a reporting command's statement waits for a load's lock before giving up
(:func:`gridtopo.db.engine.open_engine` ``lock_wait_ms``)."""


@contextmanager
def during_load(engine: Engine) -> Iterator[None]:
    """Turn a read that gave up on a lock (an engine opened with a short ``lock_wait_ms``)
    into :class:`RunInProgressError` naming the ingest that holds it: a SQLite load in
    rollback-journal mode locks the file while it writes, a PostgreSQL load the tables it
    empties. ``gridtopo runs`` and ``info`` read through it, so they never wait on a load."""
    try:
        yield
    except OperationalError:
        lock = IngestLock(engine)
        if lock.acquire():
            lock.release()
            raise
        raise RunInProgressError(f"{lock.holder()} and is writing the model; what it "
                                 "replaces is readable again when it commits") from None


def describe_run(run_id: int, user: str | None, started: dt.datetime, pid: int | None,
                 host: str | None) -> str:
    """``run N by USER since T is in progress (pid P on HOST)``."""
    return (f"run {run_id} by {user or 'unknown'} since {as_utc(started):%Y-%m-%d %H:%M:%S} "
            f"UTC is in progress (pid {pid} on {host})")


def mark_interrupted(engine: Engine) -> list[int]:
    """Mark every ``running`` run ``interrupted`` (call only while holding the lock): ids."""
    with engine.begin() as conn:
        rows = conn.execute(select(IngestRun.id, IngestRun.pid, IngestRun.host,
                                   IngestRun.heartbeat_at, IngestRun.started_at)
                            .where(IngestRun.status == "running")).all()
        for run in rows:
            beat = as_utc(run.heartbeat_at or run.started_at)
            conn.execute(update(IngestRun).where(IngestRun.id == run.id).values(
                status="interrupted", finished_at=utcnow(),
                message=(f"interrupted: its process (pid {run.pid} on {run.host}) ended "
                         f"before the run finished (last heartbeat {beat:%Y-%m-%d %H:%M:%S} "
                         "UTC); nothing it read was loaded, the previous model is intact")))
        return [run.id for run in rows]


@contextmanager
def ingest_lock(engine: Engine, *, wait: bool = False) -> Iterator[IngestLock]:
    """Hold the ingest lock for the block, after marking dead runs ``interrupted``; raises
    :class:`RunInProgressError` naming the live run when another ingest holds it."""
    lock = IngestLock(engine)
    if not lock.acquire(wait=wait):
        raise _refusal(lock)
    try:
        mark_interrupted(engine)
        yield lock
    finally:
        lock.release()


def refuse_if_running(engine: Engine) -> None:
    """:class:`RunInProgressError` when an ingest holds the lock now — checked before a
    command touches a database a SQLite load may hold locked (never waits)."""
    lock = IngestLock(engine)
    if lock.acquire():
        lock.release()
        return
    raise _refusal(lock)


def _refusal(lock: IngestLock) -> RunInProgressError:
    return RunInProgressError(f"{lock.holder()}: one ingest at a time per database; wait "
                              "for it to finish, or pass --wait to queue behind it")


def ingest_running(engine: Engine) -> bool:
    """Whether an ingest holds the lock now (never waits)."""
    lock = IngestLock(engine)
    if lock.acquire():
        lock.release()
        return False
    return True


def reap_interrupted(engine: Engine) -> list[int]:
    """If no ingest holds the lock, mark runs left ``running`` as ``interrupted`` (ids);
    never waits: with a live ingest it does nothing."""
    lock = IngestLock(engine)
    if not lock.acquire():
        return []
    try:
        return mark_interrupted(engine)
    finally:
        lock.release()


__all__ = [
    "ADVISORY_KEY",
    "READ_WAIT_MS",
    "IngestLock",
    "describe_run",
    "during_load",
    "ingest_lock",
    "ingest_running",
    "lock_path",
    "mark_interrupted",
    "reap_interrupted",
]
