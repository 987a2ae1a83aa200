"""Run lifecycle on both stores, with real ``gridtopo ingest`` processes: ``kill -9`` at read,
load and commit leaves the previous model live and the run ``interrupted`` (marked by the next
command), and the next run is fine; two ingests of one database never run at once — the second
is refused naming the first, or with ``--wait`` queues behind it.

A run is held at a phase with the test hook ``GRIDTOPO_TEST_PAUSE_AT`` (it prints ``paused at
PHASE`` and sleeps; :func:`gridtopo.progress.pause_point`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from gridtopo.cli.main import main
from gridtopo.db import load as load_module
from gridtopo.db import open_engine
from gridtopo.ingest.tables import TABLES
from gridtopo.progress import PAUSE_ENV


def model_state(engine: Engine) -> dict[str, Any]:
    """Rows per model table, and the live run."""
    with engine.connect() as conn:
        state: dict[str, Any] = {
            t: int(conn.scalar(text(f'SELECT count(*) FROM "{t}"')) or 0) for t in TABLES}
        state["live run"] = conn.scalar(
            text("SELECT max(id) FROM ingest_runs WHERE status = 'succeeded'"))
        state["customers' runs"] = conn.scalar(text("SELECT max(valid_from_run) FROM customers"))
    return state


def start(url: str, cwd: Path, *args: str, pause: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != PAUSE_ENV}
    if pause:
        env[PAUSE_ENV] = pause
    return subprocess.Popen(
        [sys.executable, "-c", "from gridtopo.cli.main import main; main()", "--db", url,
         "ingest", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def paused(proc: subprocess.Popen[str], phase: str) -> None:
    """Wait until ``proc`` says it is paused at ``phase`` (fails if it ends instead)."""
    assert proc.stderr is not None
    seen = []
    while line := proc.stderr.readline():
        seen.append(line)
        if f"paused at {phase}" in line:
            return
    raise AssertionError(f"the ingest ended without pausing at {phase}: {''.join(seen)}")


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", url, *args])
    return result.exit_code, result.output


def runs(url: str) -> list[dict[str, Any]]:
    code, output = cli(url, "runs", "--json")
    assert code == 0, output
    return list(json.loads(output))


def eventually_interrupted(url: str, run_id: int) -> dict[str, Any]:
    """The run as ``gridtopo runs`` shows it once the killed process's lock is gone (a
    PostgreSQL server ends the dead client's session as soon as it notices the socket shut)."""
    for _ in range(100):
        run = next(r for r in runs(url) if r["run_id"] == run_id)
        if run["status"] != "running":
            return run
        time.sleep(0.1)
    return run


@pytest.mark.parametrize("phase", ["read", "load", "commit"])
def test_killed_run_leaves_the_model_and_is_marked_interrupted(
        phase: str, model_db_url: str, synthetic_sources: Path, tmp_path: Path) -> None:
    engine = open_engine(model_db_url)
    before = model_state(engine)
    proc = start(model_db_url, tmp_path, str(synthetic_sources), "--force", pause=phase)
    try:
        paused(proc, phase)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = max(r["run_id"] for r in runs(model_db_url))
    run = eventually_interrupted(model_db_url, killed)
    assert run["status"] == "interrupted", run
    assert f"pid {proc.pid}" in run["message"] and "previous model is intact" in run["message"]
    assert model_state(engine) == before
    code, output = cli(model_db_url, "info", "--json")
    assert code == 0 and json.loads(output)["last_ingest"]["status"] == "interrupted", output
    code, output = cli(model_db_url, "ingest", str(synthetic_sources), "--force")
    assert code == 0, output
    after = model_state(engine)
    assert after["live run"] > killed and after["customers"] == before["customers"]
    assert runs(model_db_url)[0]["status"] == "succeeded"
    engine.dispose()


def test_second_ingest_is_refused_or_waits(model_db_url: str, synthetic_sources: Path,
                                           tmp_path: Path) -> None:
    first = start(model_db_url, tmp_path, str(synthetic_sources), "--force", pause="load")
    second: subprocess.Popen[str] | None = None
    try:
        paused(first, "load")
        code, output = cli(model_db_url, "ingest", str(synthetic_sources), "--force")
        assert code == 2, output
        assert re.search(r"run \d+ by \S+ since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC is in "
                         rf"progress \(pid {first.pid} on ", output), output
        assert "--wait" in output
        # runs and info answer while the load holds its locks: the history, or who loads
        for command in ("runs", "info"):
            code, output = cli(model_db_url, command)
            assert code == 0 or (code == 2 and "is in progress" in output), output
        second = start(model_db_url, tmp_path, str(synthetic_sources), "--force", "--wait")
        time.sleep(1)  # let it reach the lock; it must still be waiting there
        assert second.poll() is None
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert second is not None
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    statuses = [r["status"] for r in runs(model_db_url)[:2]]
    assert statuses == ["succeeded", "interrupted"]


@pytest.mark.parametrize(("failure", "says"), [
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
    (OperationalError("INSERT INTO customers", {}, Exception("database or disk is full")),
     "the disk is full"),
    (OperationalError("INSERT INTO customers", {},
                      Exception("server closed the connection unexpectedly")),
     "lost the connection to the database"),
], ids=["ENOSPC", "SQLite full", "connection lost"])
def test_environment_failures_are_clear_errors(
        failure: Exception, says: str, model_db_url: str, synthetic_sources: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk or a lost connection is exit 2 with what to do, not "internal error"."""
    engine = open_engine(model_db_url)
    before = model_state(engine)

    def clear_then_fail(conn: object) -> None:
        raise failure

    monkeypatch.setattr(load_module, "clear_model", clear_then_fail)
    code, output = cli(model_db_url, "ingest", str(synthetic_sources), "--force")
    assert code == 2, output
    assert says in output and "previous model is intact" in output
    assert "internal error" not in output
    assert model_state(engine) == before
    assert runs(model_db_url)[0]["status"] == "failed"
    engine.dispose()
