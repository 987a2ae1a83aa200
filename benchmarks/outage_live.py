"""Answers never stop: a real `gridtopo serve` under a steady status load while a switching
change and then an ingest change the model (``benchmarks/outage.py --live``).

The model is copied to a scratch database (the benchmark writes to it). ``gridtopo serve
--workers W`` follows it; an open-loop load generator (asyncio, keep-alive connections, raw
HTTP/1.1) sends ``--live-rate`` status requests/s for 2,000 customers, half of them below the
device switched. Phases:

1. steady: the original model;
2. switching: ``POST /v1/switching`` takes the device out of service; "visible" is the time
   from sending it until every worker's ``/health`` names the new switching version;
3. ingest: ``gridtopo ingest`` of the same exports, their edges file touched so that the
   export is newer than the change: the export wins and the change is undone.

Every answer is checked against the answer of the model its ``X-Gridtopo-Run`` names,
computed in process from that model's index (old or new: no mixed state). Targets: visible
≤ 1 s; zero errors, p99 ≤ 20 ms at 1,000 requests/s, every answer old-or-new.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from gridtopo.api.keys import create_key
from gridtopo.api.schemas import json_body
from gridtopo.db import open_engine
from gridtopo.db.runs import model_run
from gridtopo.outages.state import OutageState, customer_status
from gridtopo.topology.index import PROTECTIVE_KINDS, QueryIndex, load_index

GRIDTOPO = str(Path(sys.executable).with_name("gridtopo"))


@dataclass
class Answer:
    """One status answer: when it was sent (monotonic), latency, code, run, customer, body."""

    sent: float
    ms: float
    code: int
    run: int
    customer: str
    body: bytes


@dataclass
class Load:
    """An open-loop generator of status requests at ``rate``/s over ``connections``."""

    port: int
    key: str
    customers: list[str]
    rate: float
    connections: int = 16
    answers: list[Answer] = field(default_factory=list)
    transport_errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._connection(i) for i in range(self.connections)))

    async def _connection(self, number: int) -> None:
        interval = self.connections / self.rate
        start = time.monotonic() + number * interval / self.connections
        k = 0
        reader = writer = None
        while not self.stop.is_set():
            due = start + k * interval
            k += 1
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            customer = self.customers[(k * self.connections + number) % len(self.customers)]
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                sent = time.monotonic()
                writer.write(f"GET /v1/customers/{customer}/status HTTP/1.1\r\nHost: bench\r\n"
                             f"X-API-Key: {self.key}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")  # type: ignore[union-attr]
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))  # type: ignore[union-attr]
                self.answers.append(Answer(sent, (time.monotonic() - sent) * 1000,
                                           int(lines[0].split()[1]),
                                           int(headers.get("x-gridtopo-run", 0)), customer, body))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.transport_errors += 1
                writer = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workers(url: str, tries: int = 12) -> dict[int, tuple[int, int]]:
    found = {}
    for _ in range(tries):
        model = httpx.get(f"{url}/health", timeout=10).json()["model"]
        found[model["worker"]] = (model["ingest_run"], model["switching_version"])
    return found


def _expected(engine: Any, customers: list[str]) -> dict[str, bytes]:
    """The status answers of the database's current model, computed in process."""
    index = load_index(engine)
    state = OutageState.load(engine, index)
    return {c: json_body(customer_status(index, state, c)) for c in customers}


def _device(index: QueryIndex, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A protective device with between 1,000 and 20,000 customers below, and them."""
    tree = np.flatnonzero(np.asarray(index.tree_child) >= 0)
    rng.shuffle(tree)
    for edge in tree.tolist():
        if index.kind_name(edge) not in PROTECTIVE_KINDS:
            continue
        child = int(index.tree_child[edge])
        positions = np.arange(int(index.pos[child]), int(index.end[child]))
        if 1000 <= index.count_customers(positions) <= 20000:
            return index.edge_ids[edge].decode(), index.customers_at(positions)
    raise RuntimeError("no protective device with 1,000-20,000 customers below")


def live_benchmark(db: str, sources: Path, workdir: Path, *, rate: float, workers: int,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Run the phases (see the module) on a scratch copy of ``db``; one row per phase."""
    scratch = workdir / "live"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if db.startswith("sqlite:///"):
        shutil.copyfile(db.removeprefix("sqlite:///"), scratch / "gridtopo.db")
        url = f"sqlite:///{scratch / 'gridtopo.db'}"
    else:
        url = db  # a PostgreSQL model is written to: pass a scratch database
    os.chdir(scratch)
    engine = open_engine(url)
    rng = np.random.default_rng(seed)
    index = load_index(engine)
    device, below = _device(index, rng)
    inside = index.names(index.customer_ids, below[rng.permutation(below.size)[:1000]])
    everyone = rng.choice(len(index.customer_ids), 1000, replace=False)
    customers = sorted(set(inside) | set(index.names(index.customer_ids, everyone)))
    del index
    reader = create_key(engine, "bench-reader", ["outage:read"])[0]
    writer = create_key(engine, "bench-dispatch", ["network:write"])[0]
    expected = {model_run(engine) or 0: _expected(engine, customers)}

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (scratch / "serve.log").open("wb")
    server = subprocess.Popen([GRIDTOPO, "--db", url, "serve", "--port", str(port),
                               "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT)
    load = Load(port, reader, customers, rate)
    marks: dict[str, float] = {}
    visible = {}
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if len(_workers(base)) == workers:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((scratch / "serve.log").read_text())
            time.sleep(0.5)
        thread = threading.Thread(target=load.run)
        thread.start()
        time.sleep(5)
        marks["switching"] = time.monotonic()
        done = httpx.post(f"{base}/v1/switching", headers={"X-API-Key": writer}, timeout=60,
                          json={"changes": [{"device": device, "in_service": False,
                                             "note": "benchmark: section out of service"}]})
        done.raise_for_status()
        answer = done.json()
        posted = time.monotonic()
        first: dict[int, float] = {}  # worker -> when its /health first named the change
        while len(first) < workers:
            model = httpx.get(f"{base}/health", timeout=10).json()["model"]
            if model["switching_version"] == answer["switching_version"]:
                first.setdefault(model["worker"], time.monotonic())
        visible["switching"] = max(first.values()) - marks["switching"]
        visible["workers"] = sorted(round(t - marks["switching"], 3) for t in first.values())
        visible["switching_post"] = posted - marks["switching"]
        visible["apply"] = answer["seconds"]
        expected[answer["run_id"]] = _expected(engine, customers)
        time.sleep(3)
        edges = sources / "distribution" / "edges.csv"
        os.utime(edges)  # the export is newer than the change: it wins
        marks["ingest"] = time.monotonic()
        subprocess.run([GRIDTOPO, "--db", url, "ingest", str(sources), "--force"], check=True,
                       stdout=subprocess.DEVNULL)
        ingested = time.monotonic()
        run = model_run(engine) or 0
        while {r for r, _ in _workers(base).values()} != {run}:
            time.sleep(0.02)
        visible["ingest"] = time.monotonic() - ingested
        expected[run] = _expected(engine, customers)
        time.sleep(3)
        marks["end"] = time.monotonic()
        load.stop.set()
        thread.join(60)
    finally:
        load.stop.set()
        server.terminate()
        server.wait(30)
        log.close()
    assert expected[run] == expected[min(expected)], "the export did not undo the change"
    assert expected[answer["run_id"]] != expected[run]
    rows = []
    phases = [("steady", 0.0, marks["switching"]),
              ("switching change", marks["switching"], marks["ingest"]),
              ("ingest", marks["ingest"], marks["end"])]
    for name, lo, hi in phases:
        got = [a for a in load.answers if lo <= a.sent < hi]
        ms = np.array([a.ms for a in got]) if got else np.zeros(1)
        span = (max(a.sent for a in got) - min(a.sent for a in got)) if got else 1.0
        rows.append({
            "phase": name, "requests": len(got), "rate": len(got) / max(span, 1e-9),
            "errors": sum(a.code != 200 for a in got),
            "runs": sorted({a.run for a in got}),
            "wrong": sum(a.body != expected.get(a.run, {}).get(a.customer) for a in got),
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
            "visible": visible.get("switching" if name == "switching change" else name),
        })
    rows.append({"transport_errors": load.transport_errors, "device": device,
                 "customers_below": int(below.size), **visible})
    json.dump(rows, (scratch / "live.json").open("w"), indent=2, default=str)
    return rows


def print_live(rows: list[dict[str, Any]]) -> None:
    """The phases as a table, against the targets."""
    *phases, extra = rows
    print(f"\nlive model under {phases[0]['rate']:.0f} status requests/s "
          f"(device {extra['device']}, {extra['customers_below']:,} customers below)")
    print(f"{'phase':<18}{'requests':>9}{'req/s':>8}{'errors':>8}{'wrong':>7}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'max ms':>8}  runs served        visible")
    for r in phases:
        seen = f"{r['visible']:.2f} s" if r["visible"] is not None else "-"
        print(f"{r['phase']:<18}{r['requests']:>9}{r['rate']:>8.0f}{r['errors']:>8}"
              f"{r['wrong']:>7}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['max']:>8.1f}  "
              f"{','.join(map(str, r['runs'])):<18} {seen}")
    apply = extra["apply"]
    print(f"switching change: POST answered {extra['switching_post']:.2f} s (record "
          f"{apply['record']:.2f} s, index update {apply['index_update']:.2f} s, save "
          f"{apply['index_save']:.2f} s); every worker served it {extra['switching']:.2f} s "
          f"after it was sent (per worker {extra['workers']}; target ≤ 1 s); after the "
          f"ingest returned: {extra['ingest']:.2f} s; transport errors {extra['transport_errors']}")
    worst = max(r["p99"] for r in phases)
    print(f"targets: errors 0 -> {sum(r['errors'] for r in phases)}, wrong 0 -> "
          f"{sum(r['wrong'] for r in phases)}, p99 ≤ 20 ms -> {worst:.2f} ms, visible ≤ 1 s -> "
          f"{extra['switching']:.2f} s")
