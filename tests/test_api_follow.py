"""A running server follows the model: `gridtopo serve --workers 2` (real uvicorn processes on
127.0.0.1) while a changed source folder is ingested — every worker swaps to the new run by
itself, a removed customer then 404s, and no answer during the swap is a 5xx or mixes the two
models. And the swap mechanism itself (ServedModel) in process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from gridtopo.api.keys import create_key
from gridtopo.api.schemas import json_body
from gridtopo.api.served import ServedModel, index_lock, model_version
from gridtopo.db.runs import model_run
from gridtopo.outages.contacts import contacts
from gridtopo.pipeline import ingest
from gridtopo.topology.index import load_index
from tests.test_api_service import _free_port
from tests.test_outage_events import Oracle, _fuse_with_customers

REMOVED = 3
"""Customers below the chosen fuse that the second source folder no longer has."""
SOURCE_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Shrunk:
    """The model's sources with some customers of one fuse removed from the marketing export."""

    sources: Path
    fuse: str
    removed: list[str]
    below: set[str]


def _remove_customers(sources: Path, target: Path, removed: list[str]) -> None:
    shutil.copytree(sources, target)
    path = target / "marketing" / "customers.csv"
    prefixes = tuple(f"{c},".encode() for c in removed)
    lines = path.read_bytes().split(b"\n")
    kept = [line for line in lines if not line.startswith(prefixes)]
    assert len(lines) - len(kept) >= len(removed)
    path.write_bytes(b"\n".join(kept))


@pytest.fixture
def shrunk(model_engine: Engine, synthetic_sources: Path, tmp_path: Path) -> Shrunk:
    fuse, below = _fuse_with_customers(Oracle(model_engine))
    removed = sorted(below)[:REMOVED]
    _remove_customers(synthetic_sources, tmp_path / "shrunk", removed)
    return Shrunk(tmp_path / "shrunk", fuse, removed, below)


def _names(engine: Engine, ids: set[str]) -> dict[str, Any]:
    found = contacts(engine, sorted(ids), reveal=True)
    return {c: found.get(c, {}).get("name") for c in ids}


@dataclass
class Observed:
    """What the request loop saw: each listing's run and {customer: name}, each removed
    customer's status answer with its run, and every status."""

    listings: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    removed_status: list[tuple[int, int]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def _loop(url: str, key: str, shrunk: Shrunk, stop: threading.Event, seen: Observed) -> None:
    """Ask, on new connections (so both workers answer), until ``stop`` (bounded: 3 minutes,
    2,000 rounds): the fuse's customer list with names, and a removed customer's status."""
    body = {"devices": [shrunk.fuse], "list_customers": True, "limit": 1000}
    deadline = time.monotonic() + 180
    with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": key},
                      limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for _ in range(2000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            listed = client.post("/v1/impact", json=body)
            status = client.get(f"/v1/customers/{shrunk.removed[0]}/status")
            seen.statuses += [listed.status_code, status.status_code]
            if listed.status_code == 200:
                seen.listings.append((int(listed.headers["x-gridtopo-run"]), {
                    c["customer_id"]: c.get("name")
                    for c in listed.json()["customer_list"]["items"]}))
            if "x-gridtopo-run" in status.headers:
                seen.removed_status.append((int(status.headers["x-gridtopo-run"]),
                                            status.status_code))


@pytest.fixture
def serve(model_db_url: str, tmp_path: Path) -> Iterator[str]:
    """`gridtopo serve --workers 2` on the model, as a subprocess (the personal-data limit out
    of the way of the request loop); its base URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from gridtopo.cli import main; main()", "--db", model_db_url,
         "serve", "--port", str(port), "--workers", "2", "--personal-limit", "100000000"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if len(_worker_runs(url, tries=6)) == 2:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _worker_runs(url: str, tries: int = 8) -> dict[int, int]:
    """{worker pid: ingest run it serves}, from /health on ``tries`` new connections."""
    found: dict[int, int] = {}
    for _ in range(tries):
        model = httpx.get(f"{url}/health", timeout=10).json()["model"]
        found[model["worker"]] = model["ingest_run"]
    return found


def test_every_worker_follows_an_ingest_without_mixed_answers(
        serve: str, model_engine: Engine, shrunk: Shrunk) -> None:
    old_run = model_run(model_engine)
    assert old_run is not None
    key = create_key(model_engine, "notifier", ["outage:read", "personal:read"])[0]
    old = _names(model_engine, shrunk.below)
    assert set(shrunk.removed) <= set(old)

    seen = Observed()
    stop = threading.Event()
    loop = threading.Thread(target=_loop, args=(serve, key, shrunk, stop, seen))
    loop.start()
    try:
        report = ingest(model_engine, shrunk.sources)
        new_run = report.run_id
        assert report.status == "loaded" and model_run(model_engine) == new_run
        ingested = time.monotonic()
        while set(_worker_runs(serve).values()) != {new_run}:
            assert time.monotonic() - ingested < 60, "the workers did not follow the ingest"
            time.sleep(0.1)
        followed = time.monotonic() - ingested
        time.sleep(1.0)  # a little more of the loop on the new model
    finally:
        stop.set()
        loop.join(60)
    print(f"every worker served run {new_run} {followed:.2f} s after the ingest returned; "
          f"{len(seen.statuses)} answers during the swap")

    workers = _worker_runs(serve, tries=12)
    assert len(workers) == 2 and set(workers.values()) == {new_run}
    assert not [s for s in seen.statuses if s >= 500]
    expected = {old_run: old, new_run: _names(model_engine, shrunk.below - set(shrunk.removed))}
    assert {run for run, _ in seen.listings} == {old_run, new_run}
    mixed = [run for run, items in seen.listings if items != expected[run]]
    assert mixed == []
    assert {(run, code) for run, code in seen.removed_status} == {(old_run, 200),
                                                                  (new_run, 404)}
    with httpx.Client(base_url=serve, headers={"X-API-Key": key}, timeout=10,
                      limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for removed in shrunk.removed:
            r = client.get(f"/v1/customers/{removed}/status")
            assert r.status_code == 404 and removed in r.json()["detail"]
            assert r.headers["content-type"] == "application/problem+json"
        kept = sorted(shrunk.below - set(shrunk.removed))[0]
        assert client.get(f"/v1/customers/{kept}/status").json()["customer_id"] == kept
        health = client.get("/health").json()
        assert health["index"]["ingest_run"] == new_run and health["model"]["generation"] >= 2


def test_served_model_swaps_once_per_new_model_and_reads_stay_consistent(
        model_engine: Engine, shrunk: Shrunk, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    served = ServedModel(model_engine)
    first = served.current
    assert first.generation == 1 and first.run == model_run(model_engine)
    assert served.refresh() is False and served.current is first  # nothing new

    ingest(model_engine, shrunk.sources)
    version = model_version(model_engine)
    assert version.settled and version.load > first.version.load
    calls: list[int] = []

    def listing(snapshot: Any) -> list[str]:
        calls.append(snapshot.generation)
        return [c for c in shrunk.removed if c.encode() in snapshot.index.customer_ids]

    # a read of live rows waits for the swap (here: without a poller, refreshing itself)
    assert served.consistent(listing) == []
    assert calls == [2] and served.current.generation == 2
    assert served.current.run == version.run and served.current.version == version
    assert served.refresh() is False and served.current.generation == 2

    # an unchanged re-ingest is a new run of the same model: swapped, live reads not held up
    again = ingest(model_engine, shrunk.sources)
    assert again.status == "unchanged"
    assert served.consistent(lambda s: s.generation) == 2
    assert served.refresh() is True and served.current.run == again.run_id
    assert served.current.generation == 3


def test_workers_build_a_stale_index_one_at_a_time(model_engine: Engine, shrunk: Shrunk,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two servers' workers noticing one ingest at once: one builds the index under the lock,
    the other reads what it saved; neither sees a half-written directory."""
    monkeypatch.chdir(tmp_path)
    workers = [ServedModel(model_engine), ServedModel(model_engine)]
    ingest(model_engine, shrunk.sources)
    results: list[bool] = []
    errors: list[BaseException] = []

    def refresh(served: ServedModel) -> None:
        try:
            results.append(served.refresh())
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=refresh, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and results == [True, True]
    runs = {w.current.run for w in workers}
    assert runs == {model_run(model_engine)}
    with index_lock(model_engine):
        assert load_index(model_engine).meta["built_at"] == workers[0].current.index.meta[
            "built_at"] == workers[1].current.index.meta["built_at"]


def _status_loop(url: str, key: str, customers: list[str], stop: threading.Event,
                 seen: list[tuple[int, int, str, Any]]) -> None:
    """Ask the customers' status on new connections (both workers answer) until ``stop``
    (bounded: 2 minutes): ``(status code, run, customer, body)`` of every answer."""
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": key},
                      limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            for customer in customers:
                r = client.get(f"/v1/customers/{customer}/status")
                seen.append((r.status_code, int(r.headers.get("x-gridtopo-run", 0)), customer,
                             r.json() if r.status_code == 200 else r.text))


def _worker_switching(url: str, tries: int = 8) -> dict[int, tuple[int, int]]:
    """{worker pid: (ingest run, switching version)} from /health on new connections."""
    found = {}
    for _ in range(tries):
        model = httpx.get(f"{url}/health", timeout=10).json()["model"]
        found[model["worker"]] = (model["ingest_run"], model["switching_version"])
    return found


def test_every_worker_follows_a_switching_change_without_mixed_answers(
        serve: str, model_engine: Engine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A switching change recorded through one worker: both serve it within a poll, and
    every status answer during the change is the old model's or the new one's, by its run."""
    from gridtopo.outages.state import OutageState, customer_status

    monkeypatch.chdir(tmp_path)  # the server's working directory: a PostgreSQL index is here
    fuse, below = _fuse_with_customers(Oracle(model_engine))
    inside = sorted(below)[:3]
    outside = sorted(set(Oracle(model_engine).customer_node) - below)[:3]
    customers = inside + outside

    def answers() -> dict[str, Any]:
        index = load_index(model_engine)
        state = OutageState.load(model_engine, index)
        return {c: json.loads(json_body(customer_status(index, state, c))) for c in customers}

    old_run = model_run(model_engine)
    expected = {old_run: answers()}
    reader = create_key(model_engine, "notifier", ["outage:read"])[0]
    writer = create_key(model_engine, "dispatch", ["network:write"])[0]
    seen: list[tuple[int, int, str, Any]] = []
    stop = threading.Event()
    loop = threading.Thread(target=_status_loop, args=(serve, reader, customers, stop, seen))
    loop.start()
    try:
        time.sleep(0.5)
        posted = time.monotonic()
        done = httpx.post(f"{serve}/v1/switching", headers={"X-API-Key": writer}, timeout=60,
                          json={"changes": [{"device": fuse, "in_service": False,
                                             "note": "fuse out"}]})
        assert done.status_code == 200, done.text
        version, new_run = done.json()["switching_version"], done.json()["run_id"]
        while set(_worker_switching(serve).values()) != {(new_run, version)}:
            assert time.monotonic() - posted < 30, "the workers did not follow the change"
            time.sleep(0.05)
        followed = time.monotonic() - posted
        time.sleep(1.0)
    finally:
        stop.set()
        loop.join(60)
    print(f"every worker served switching version {version} {followed:.2f} s after the "
          f"request was sent; {len(seen)} answers during the change")
    expected[new_run] = answers()
    assert expected[new_run] != expected[old_run]
    assert all(expected[new_run][c]["out"] for c in inside)
    assert [s for s in seen if s[0] != 200] == []
    assert {run for _, run, _, _ in seen} == {old_run, new_run}
    mixed = [(run, c) for _, run, c, body in seen if body != expected[run][c]]
    assert mixed == []
