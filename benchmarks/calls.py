"""A storm of trouble calls and AMI last gasps through a real `gridtopo serve` (issue 15).

A synthetic model is generated and ingested into a scratch database; `gridtopo serve
--workers W` serves it. Faults are simulated at protective devices with disjoint sections,
spread over ``--seconds``: each fault's meters send their last gasp within two seconds
(``POST /v1/meter-events``, batches of ``--batch``), and its customers call over the next
twenty (``POST /v1/calls``, one call a request), 10% of the calls from customers elsewhere
(wrong address, own wiring). The load is open-loop (asyncio, keep-alive connections), so a
slow server shows as latency, not as a slower load.

Figures: every call answered (2xx), latency percentiles per route, and the **prediction
lag** of each fault — from the moment its signals could first predict it (the second
distinct signal sent) until ``GET /v1/predictions`` shows an open prediction at the faulted
device or its first protective parent — and the share of faults predicted so.

Targets (Guangdong size, full run): 50,000 calls and 200,000 last gasps in 10 minutes,
p99 ≤ 100 ms, predictions updated within 5 s. Run at a smaller size with the flags::

    .venv/bin/python benchmarks/calls.py --customers 20000 --calls 5000 --events 20000 \\
        --seconds 120 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import select

from gridtopo.api.keys import create_key
from gridtopo.db import open_engine, upgrade
from gridtopo.db.models import Customer
from gridtopo.outages.grouping import device_range, protective_above
from gridtopo.topology.index import PROTECTIVE_KINDS, QueryIndex, load_index

GRIDTOPO = str(Path(sys.executable).with_name("gridtopo"))
MIN_CUSTOMERS = 20
LAG_POLL_SECONDS = 0.25


@dataclass
class Fault:
    """A simulated fault: its device, the accepted predictions, its customers and meters."""

    device: str
    accepted: set[str]
    customers: list[str]
    meters: list[str]
    start: float
    ready: float = float("inf")
    """When its second signal was sent (monotonic): the earliest it can be predicted."""
    seen: float | None = None


@dataclass
class Load:
    """What was sent and how it was answered."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"calls": [],
                                                                        "meter-events": []})
    errors: dict[str, int] = field(default_factory=lambda: {"calls": 0, "meter-events": 0})
    statuses: dict[str, int] = field(default_factory=dict)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model(workdir: Path, customers: int, seed: int) -> str:
    from gridtopo.pipeline import ingest
    from gridtopo.synthetic import generate

    sources = workdir / "sources"
    generate(sources, customers, seed=seed)
    url = f"sqlite:///{workdir / 'gridtopo.db'}"
    engine = open_engine(url, create=True)
    upgrade(engine)
    ingest(engine, sources)
    engine.dispose()
    return url


def _faults(index: QueryIndex, meters: dict[str, str], events: int, seed: int) -> list[Fault]:
    """Protective devices with disjoint sections until their meters number ``events``."""
    rng = random.Random(seed)
    edges = [e for e in range(len(index.edge_ids))
             if index.kind_name(e) in PROTECTIVE_KINDS and int(index.tree_child[e]) >= 0]
    rng.shuffle(edges)
    taken = np.zeros(len(index.order), dtype=bool)
    faults: list[Fault] = []
    total = 0
    for edge in edges:
        start, end = device_range(index, edge)
        n = int(index.cum_customers[end] - index.cum_customers[start])
        if n < MIN_CUSTOMERS or taken[start:end].any() or n > 2000:
            continue
        above = protective_above(index, start)
        first_parent = taken[device_range(index, above[1])[0]] if len(above) > 1 else False
        if first_parent:
            continue
        taken[start:end] = True
        ids = index.names(index.customer_ids, index.customers_at(np.arange(start, end)))
        device = index.edge_ids[edge].decode()
        accepted = {device, *([index.edge_ids[above[1]].decode()] if len(above) > 1 else [])}
        faults.append(Fault(device, accepted, ids, [meters[c] for c in ids if c in meters], 0))
        total += len(faults[-1].meters)
        if total >= events:
            break
    return faults


async def _storm(url: str, key: str, faults: list[Fault], everyone: list[str], calls: int,
                 events: int, seconds: float, batch: int, seed: int, load: Load) -> None:
    rng = random.Random(seed)
    plan: list[tuple[float, str, Any, Fault | None]] = []
    per_fault = max(1, round(seconds / max(1, len(faults))))
    share = calls / max(1, sum(len(f.customers) for f in faults))
    left_events = events
    call_no = 0
    for i, fault in enumerate(faults):
        fault.start = i * seconds / len(faults)
        gasps = fault.meters[:left_events]
        left_events -= len(gasps)
        for j in range(0, len(gasps), batch):
            at = fault.start + rng.uniform(0, min(2.0, per_fault))
            plan.append((at, "meter-events", {"events": [
                {"meter_id": m, "kind": "power_off", "at": "2026-12-07T08:00:00Z"}
                for m in gasps[j:j + batch]]}, fault))
        n = max(2, round(len(fault.customers) * share))
        for customer in rng.choices(fault.customers, k=n):
            if rng.random() < 0.1:
                customer = rng.choice(everyone)
            call_no += 1
            at = fault.start + rng.uniform(0, min(20.0, per_fault * 4))
            plan.append((at, "calls", {"call_id": f"bench-{call_no}", "customer_id": customer,
                                       "trouble": "no_supply", "channel": "95598",
                                       "at": "2026-12-07T08:00:00Z"}, fault))
    plan.sort(key=lambda p: p[0])
    sent: dict[int, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60,
                                 limits=limits) as client:
        begin = time.monotonic()

        async def one(at: float, route: str, body: Any, fault: Fault | None) -> None:
            await asyncio.sleep(max(0.0, begin + at - time.monotonic()))
            if fault is not None:
                sent[id(fault)] = sent.get(id(fault), 0) + (len(body["events"])
                                                            if route == "meter-events" else 1)
                if sent[id(fault)] >= 2 and fault.ready == float("inf"):
                    fault.ready = time.monotonic()
            t = time.perf_counter()
            try:
                r = await client.post(f"/v1/{route}", json=body)
                ok = r.status_code < 300
                if route == "calls" and ok:
                    status = r.json()["status"]
                    load.statuses[status] = load.statuses.get(status, 0) + 1
            except httpx.HTTPError:
                ok = False
            load.latencies[route].append((time.perf_counter() - t) * 1000)
            if not ok:
                load.errors[route] += 1

        await asyncio.gather(*(one(*p) for p in plan))


def _watch(url: str, key: str, faults: list[Fault], until: list[float]) -> None:
    """Poll the open predictions until every fault is seen or the monotonic time ``until[0]``
    passed; note when each fault is first predicted as accepted."""
    by_device: dict[str, list[Fault]] = {}
    for f in faults:
        for d in f.accepted:
            by_device.setdefault(d, []).append(f)
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
        while time.monotonic() < until[0] and any(f.seen is None for f in faults):
            items = client.get("/v1/predictions", params={"limit": 1000}).json()["items"]
            now = time.monotonic()
            for p in items:
                for f in by_device.get(p["device"], ()):
                    if f.seen is None and now >= f.ready:
                        f.seen = now
            time.sleep(LAG_POLL_SECONDS)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gridtopo-calls-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    url = args.db or _model(workdir, args.customers, args.seed)
    built = time.perf_counter() - t
    engine = open_engine(url)
    os.chdir(workdir)
    index = load_index(engine)
    with engine.connect() as conn:
        meters = {c: m for c, m in conn.execute(select(Customer.customer_id, Customer.meter_id))
                  if m}
    key = create_key(engine, f"bench-{time.time_ns()}", ["admin"])[0]
    faults = _faults(index, meters, args.events, args.seed)
    everyone = index.names(index.customer_ids, np.arange(len(index.customer_ids)))
    port = _free_port()
    log = (workdir / "serve.log").open("wb")
    server = subprocess.Popen([GRIDTOPO, "--db", url, "serve", "--port", str(port),
                               "--workers", str(args.workers)], stdout=log,
                              stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((workdir / "serve.log").read_text())
            time.sleep(0.2)
        load = Load()
        until = [float("inf")]
        watcher = threading.Thread(target=_watch, args=(base, key, faults, until), daemon=True)
        watcher.start()
        t = time.perf_counter()
        asyncio.run(_storm(base, key, faults, everyone, args.calls, args.events, args.seconds,
                           args.batch, args.seed, load))
        storm = time.perf_counter() - t
        until[0] = time.monotonic() + 30  # time for the last faults' predictions
        watcher.join(35)
    finally:
        server.terminate()
        server.wait(30)
    lags = [f.seen - f.ready for f in faults if f.seen is not None]
    return {"customers": len(index.customer_ids), "model_seconds": built, "faults": len(faults),
            "storm_seconds": storm, "load": load, "lags": lags,
            "predicted": sum(f.seen is not None for f in faults), "workers": args.workers}


def report(r: dict[str, Any]) -> None:
    load: Load = r["load"]
    print(f"\nmodel: {r['customers']:,} customers (built in {r['model_seconds']:.0f} s); "
          f"{r['faults']} faults; {r['workers']} workers; storm took {r['storm_seconds']:.1f} s")
    print(f"{'route':<16}{'requests':>10}{'items':>10}{'errors':>8}{'req/s':>8}"
          f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    for route, items in (("calls", sum(load.statuses.values())), ("meter-events", None)):
        lat = load.latencies[route]
        print(f"{route:<16}{len(lat):>10,}{(items if items is not None else '-'):>10}"
              f"{load.errors[route]:>8}{len(lat) / r['storm_seconds']:>8.0f}"
              f"{_pct(lat, 50):>8.1f}{_pct(lat, 95):>8.1f}{_pct(lat, 99):>8.1f}"
              f"{max(lat, default=float('nan')):>8.1f}")
    print("call answers: " + ", ".join(f"{k} {v:,}" for k, v in sorted(load.statuses.items())))
    lags = r["lags"]
    print(f"faults predicted at the device or its first protective parent: {r['predicted']} of "
          f"{r['faults']} ({r['predicted'] / max(1, r['faults']):.1%}); prediction lag after "
          f"the second signal p50 {_pct(lags, 50):.2f} s, p95 {_pct(lags, 95):.2f} s, "
          f"max {max(lags, default=float('nan')):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--batch", type=int, default=100, help="last gasps per request")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--db", help="an existing model database instead of a generated one")
    parser.add_argument("--workdir", help="scratch directory (default: a temporary one)")
    report(run(parser.parse_args()))


if __name__ == "__main__":
    main()
