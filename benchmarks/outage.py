"""Benchmark the outage-impact service at the reference size, against the peers a user has.

    python benchmarks/outage.py [--customers N] [--db URL] [--pg URL] [--workdir DIR]
                                [--queries Q] [--peer-queries P] [--api-seconds S]

Model: ``--db`` (used read-only), else ``gridtopo generate`` + ``gridtopo ingest`` of N
customers (default Guangdong's 14,297,503) into ``WORKDIR/gridtopo.db``. The PostgreSQL peer
runs on ``--pg`` (the same model on PostgreSQL; read-only), else on a database
``gridtopo_bench_outage`` the script fills with the same exports.

Measured, in one run, with identical answers checked query by query:

* index build and load (memory-mapped) times;
* customers affected by one device — gridtopo's index vs networkx reachability per query (on
  the graph of conducting edges, the opened edge removed) vs a recursive CTE over ``edges``
  from the device's downstream end, on PostgreSQL (``--pg``; ``--pg skip`` leaves it out) and,
  when the model is SQLite, on SQLite;
* the full customer list of a feeder-breaker outage — index vs the same CTEs;
* customer status with 100 active events, in process;
* HTTP API: status requests/s with ``gridtopo serve`` and ``wrk`` (installed from Debian when
  missing) as the load generator; the service database is a scratch SQLite file with the API
  key, serving the model's index through ``serve --index``. For reference, the same uvicorn
  serving a bare ASGI app that answers ``{}`` (the ceiling of the HTTP stack on this host).

Targets: count p99 ≤ 1 ms, feeder list ≤ 50 ms, status p99 ≤ 1 ms, API ≥ 2,000 requests/s.

``--live`` measures instead that answers never stop (``benchmarks/outage_live.py``): a
following ``gridtopo serve --workers 2`` under 1,000 status requests/s while a switching
change and an ingest change the model — errors, p99, answers equal to the old or new model's,
and how soon every worker serves the switching change (targets: 0, ≤ 20 ms, all, ≤ 1 s).
``--live-sources`` names the exports of ``--db`` (default ``WORKDIR/sources``).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from gridtopo.api.keys import create_key
from gridtopo.clock import now_seconds
from gridtopo.db import open_engine, upgrade
from gridtopo.db.read.network import read_network
from gridtopo.outages.state import ActiveEvent, OutageState, customer_status
from gridtopo.topology.graph import supply_nodes
from gridtopo.topology.index import build_index, index_dir, read_index, save_index
from gridtopo.topology.queries import impact, impact_customers

REFERENCE_CUSTOMERS = 14_297_503
GRIDTOPO = str(Path(sys.executable).with_name("gridtopo"))
PG_BENCH = "postgresql://postgres@127.0.0.1/gridtopo_bench_outage"

CTE = """
WITH RECURSIVE below(node) AS (
    SELECT CAST(%(start)s AS varchar)
  UNION
    SELECT n.node FROM below b CROSS JOIN LATERAL (
        SELECT e.to_node AS node FROM edges e WHERE e.from_node = b.node
          AND e.edge_id <> %(device)s AND e.in_service
          AND NOT (e.normal_open AND e.kind IN ('switch', 'breaker', 'fuse', 'recloser'))
        UNION ALL
        SELECT e.from_node FROM edges e WHERE e.to_node = b.node
          AND e.edge_id <> %(device)s AND e.in_service
          AND NOT (e.normal_open AND e.kind IN ('switch', 'breaker', 'fuse', 'recloser'))
    ) n
)
SELECT {select} FROM below b
JOIN transformers t ON t.node = b.node AND t.status = 'in_service'
JOIN customers c ON c.transformer_id = t.transformer_id AND c.status <> 'closed'
"""


CTE_SQLITE = """
WITH RECURSIVE below(node) AS (
    SELECT :start
  UNION
    SELECT CASE WHEN e.from_node = b.node THEN e.to_node ELSE e.from_node END
    FROM below b JOIN edges e ON e.from_node = b.node OR e.to_node = b.node
    WHERE e.edge_id <> :device AND e.in_service
      AND NOT (e.normal_open AND e.kind IN ('switch', 'breaker', 'fuse', 'recloser'))
)
SELECT {select} FROM below b
CROSS JOIN transformers t ON t.node = b.node AND t.status = 'in_service'
CROSS JOIN customers c ON c.transformer_id = t.transformer_id AND c.status <> 'closed'
"""
"""SQLite's planner would scan all customers per node: CROSS JOIN fixes the join order."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)


def prepare_model(args: argparse.Namespace, workdir: Path) -> tuple[str, str]:
    """URLs of the model on SQLite (or --db) and on PostgreSQL (or --pg), built if needed."""
    db, pg = args.db, args.pg
    if db and pg:
        return db, pg
    sources = workdir / "sources"
    if not sources.exists():
        log(f"generating {args.customers:,} customers into {sources}")
        run(GRIDTOPO, "generate", str(sources), "--customers", str(args.customers),
            "--seed", str(args.seed))
    if not db:
        db = f"sqlite:///{workdir / 'gridtopo.db'}"
        if not (workdir / "gridtopo.db").exists():
            log("ingesting into SQLite")
            run(GRIDTOPO, "--db", db, "ingest", str(sources))
    if not pg:
        pg = PG_BENCH
        admin = "postgresql://postgres@127.0.0.1/postgres"
        run("psql", admin, "-qc", "DROP DATABASE IF EXISTS gridtopo_bench_outage WITH (FORCE)")
        run("psql", admin, "-qc", "CREATE DATABASE gridtopo_bench_outage")
        log("ingesting into PostgreSQL")
        run(GRIDTOPO, "--db", pg, "ingest", str(sources))
    return db, pg


def percentiles(ns: list[int], cpu_ns: list[int]) -> dict[str, float]:
    ms = np.array(ns, dtype=float) / 1e6
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()), "n": len(ms),
            "cpu_p99": float(np.percentile(np.array(cpu_ns, dtype=float) / 1e6, 99))}


def timed(fn: Any, items: list[Any]) -> tuple[list[Any], dict[str, float]]:
    """Results and wall-clock percentiles of ``fn`` per item; ``cpu_p99`` is the thread's CPU
    time, which leaves out the time other processes on a busy host take the core away."""
    results, ns, cpu = [], [], []
    gc.collect()
    gc.freeze()  # as a long-running service does after start-up
    for item in items:
        c = time.thread_time_ns()
        t = time.perf_counter_ns()
        results.append(fn(item))
        ns.append(time.perf_counter_ns() - t)
        cpu.append(time.thread_time_ns() - c)
    gc.unfreeze()
    return results, percentiles(ns, cpu)


class NetworkxPeer:
    """Reachability per query on the networkx graph of conducting edges (built once)."""

    def __init__(self, engine: Any, index: Any) -> None:
        edges, sources, _ = read_network(engine)
        conducting = edges.filter((edges["in_service"] == 1) & ~(
            (edges["normal_open"] == 1) & edges["kind"].is_in(
                ["switch", "breaker", "fuse", "recloser"])))
        self.G = nx.MultiGraph()
        self.G.add_edges_from((u, v, k) for k, u, v in conducting.select(
            "edge_id", "from_node", "to_node").iter_rows())
        self.root_of: dict[str, str] = {}
        for root in set(supply_nodes(edges, sources).values()):
            if root in self.G and root not in self.root_of:
                self.root_of.update(dict.fromkeys(nx.node_connected_component(self.G, root),
                                                  root))
        customers = index.cum_customers[1:] - index.cum_customers[:-1]
        self.customers_at = {index.node_ids[index.order[p]].decode(): int(c)
                             for p, c in enumerate(customers) if c}
        self.ends = dict(zip(edges["edge_id"].to_list(),
                             zip(edges["from_node"].to_list(), edges["to_node"].to_list(),
                                 strict=True), strict=True))

    def count(self, device: str) -> int:
        u, v = self.ends[device]
        if not self.G.has_edge(u, v, device):
            return 0
        root = self.root_of[u]
        before = nx.node_connected_component(self.G, root)
        self.G.remove_edge(u, v, device)
        try:
            after = nx.node_connected_component(self.G, root)
        finally:
            self.G.add_edge(u, v, device)
        return sum(self.customers_at.get(n, 0) for n in before - after)


def api_benchmark(index_path: Path, workdir: Path, customers: list[str], seconds: int,
                  workers: int) -> dict[str, Any]:
    """Requests/s of GET /v1/customers/{id}/status under wrk, with ``workers`` uvicorn workers."""
    service = workdir / "service.db"
    service.unlink(missing_ok=True)
    engine = open_engine(f"sqlite:///{service}", create=True)
    upgrade(engine)
    key, _ = create_key(engine, "bench", ["outage:read"])
    engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([GRIDTOPO, "--db", f"sqlite:///{service}", "serve", "--index",
                             str(index_path), "--port", str(port), "--workers", str(workers)])
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        check = httpx.get(f"http://127.0.0.1:{port}/v1/customers/{customers[0]}/status",
                          headers={"X-API-Key": key}, timeout=5)
        check.raise_for_status()
        if shutil.which("wrk") is None:
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        script = workdir / "status.lua"
        ids = ", ".join(f'"{c}"' for c in customers[:2000])
        script.write_text(
            f'local ids = {{{ids}}}\nlocal i = 0\nwrk.headers["X-API-Key"] = "{key}"\n'
            'request = function()\n  i = i % #ids + 1\n'
            '  return wrk.format("GET", "/v1/customers/" .. ids[i] .. "/status")\nend\n')
        result = _wrk(["-s", str(script), f"http://127.0.0.1:{port}"], seconds)
    finally:
        proc.terminate()
        proc.wait(20)
    (workdir / "bare_asgi.py").write_text(BARE_APP)
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(workdir),
                             "bare_asgi:app", "--port", str(port), "--workers", str(workers),
                             "--log-level", "warning", "--no-access-log"])
    try:
        time.sleep(5)
        result["bare"] = _wrk([f"http://127.0.0.1:{port}/"], seconds)
    finally:
        bare.terminate()
        bare.wait(20)
    return {**result, "workers": workers}


BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})
"""


def _wrk(target: list[str], seconds: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", *target],
                         capture_output=True, text=True, check=True).stdout
    rps = float(next(line.split()[1] for line in out.splitlines()
                     if line.startswith("Requests/sec")))
    p99 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("99%"))
    errors = [line.strip() for line in out.splitlines() if "Non-2xx" in line or
              "Socket errors" in line]
    return {"rps": rps, "p99": p99, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=REFERENCE_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", help="model database to use read-only")
    parser.add_argument("--pg", help="the same model on PostgreSQL, read-only (CTE peer); "
                                     "'skip' to leave that peer out")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--peer-queries", type=int, default=100)
    parser.add_argument("--api-seconds", type=int, default=15)
    parser.add_argument("--api-workers", type=int, default=1,
                        help="uvicorn workers (on this 2-core host 1 is fastest: uvicorn's "
                             "multi-worker mode serves a bare ASGI app ~10x slower here)")
    parser.add_argument("--live", action="store_true",
                        help="only the live-model benchmark (switching change and ingest "
                             "under load)")
    parser.add_argument("--live-rate", type=float, default=1000.0)
    parser.add_argument("--live-workers", type=int, default=2)
    parser.add_argument("--live-sources", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(f"/tmp/gridtopo-bench-outage-{args.customers}")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.live:
        from outage_live import live_benchmark, print_live

        db = args.db or prepare_model(argparse.Namespace(**{**vars(args), "pg": "skip"}),
                                      workdir)[0]
        print_live(live_benchmark(db, args.live_sources or workdir / "sources",
                                  workdir.resolve(), rate=args.live_rate,
                                  workers=args.live_workers, seed=args.seed))
        return
    db, pg = prepare_model(args, workdir)
    engine = open_engine(db)

    t = time.perf_counter()
    built = build_index(engine)
    build_s = time.perf_counter() - t
    target = workdir / "model.index" if args.db else index_dir(engine)
    save_index(built, target)
    del built
    t = time.perf_counter()
    index = read_index(target)
    load_s = time.perf_counter() - t
    log(f"index: built in {build_s:.1f} s, loaded in {load_s * 1000:.1f} ms ({index.meta})")

    rng = random.Random(args.seed)
    tree_edges = np.flatnonzero(np.asarray(index.tree_child) >= 0)
    devices = [index.edge_ids[e].decode() for e in rng.sample(tree_edges.tolist(),
                                                                min(args.queries,
                                                                    tree_edges.size))]
    # warm the page cache the way a running service has it
    for d in devices[:200]:
        impact(index, [d])
    counts, count_t = timed(lambda d: impact(index, [d]).customers, devices)

    source_nodes = set(np.asarray(index.feeder_source)[np.asarray(index.feeder_source) >= 0]
                       .tolist())
    breakers = [e for e in tree_edges.tolist() if index.kind_name(e) == "breaker"
                and int(index.tree_child[e]) in source_nodes]
    breaker_ids = [index.edge_ids[e].decode() for e in rng.sample(breakers,
                                                                  min(500, len(breakers)))]
    lists, list_t = timed(lambda d: impact_customers(index, impact(index, [d])), breaker_ids)

    events = [ActiveEvent({"id": i, "kind": "unplanned", "reason": "bench",
                           "started_at": now_seconds(), "expected_end": None},
                          impact(index, [d]).positions)
              for i, d in enumerate(rng.sample(breaker_ids, min(100, len(breaker_ids))))]
    state = OutageState.from_events(events, len(index.order), now_seconds())
    sample_customers = rng.sample(range(len(index.customer_ids)),
                                  min(args.queries, len(index.customer_ids)))
    customer_ids = [index.customer_ids[c].decode() for c in sample_customers]
    statuses, status_t = timed(lambda c: customer_status(index, state, c), customer_ids)
    out_now = sum(bool(s["out"]) for s in statuses)

    log("networkx peer: building the graph")
    peer = NetworkxPeer(engine, index)
    k = min(args.peer_queries, len(devices))
    nx_counts, nx_t = timed(peer.count, devices[:k])
    nx_same = sum(a == b for a, b in zip(nx_counts, counts[:k], strict=True))

    kb = min(args.peer_queries, len(breaker_ids))

    def downstream_end(d: str) -> str:
        e = int(index.edge_indices([d])[0])
        return index.node_ids[int(index.tree_child[e])].decode()

    def cte_peer(execute: Any, sql: str) -> dict[str, Any]:
        """Counts and lists by a recursive CTE, timed, and how many equal the index's."""
        def count(d: str) -> int:
            return int(execute(sql.format(select="count(*)"), downstream_end(d), d)[0][0])

        def listing(d: str) -> list[str]:
            return [r[0] for r in execute(sql.format(select="c.customer_id"),
                                          downstream_end(d), d)]

        for d in devices[:10]:
            count(d)
        got, count_t = timed(count, devices[:k])
        got_lists, list_t = timed(listing, breaker_ids[:kb])
        return {"count": count_t, "list": list_t,
                "same": sum(a == b for a, b in zip(got, counts[:k], strict=True)),
                "same_lists": sum(sorted(a) == sorted(b)
                                  for a, b in zip(got_lists, lists[:kb], strict=True))}

    peers: dict[str, dict[str, Any]] = {}
    if pg != "skip":
        import psycopg

        log("PostgreSQL recursive CTE peer")
        with psycopg.connect(pg.replace("postgresql+psycopg", "postgresql")) as conn:
            # the planner cannot size a recursive CTE and hash-joins every customer link;
            # nested loops from the few nodes found are 30x faster: give the peer its best plan
            conn.execute("SET enable_hashjoin = off")
            conn.execute("SET enable_mergejoin = off")
            peers["PostgreSQL recursive CTE"] = cte_peer(
                lambda sql, start, d: conn.execute(sql, {"start": start, "device": d})
                .fetchall(), CTE)
    if engine.dialect.name == "sqlite":
        log("SQLite recursive CTE peer")
        raw = engine.raw_connection()
        try:
            peers["SQLite recursive CTE"] = cte_peer(
                lambda sql, start, d: raw.cursor().execute(
                    sql, {"start": start, "device": d}).fetchall(), CTE_SQLITE)
        finally:
            raw.close()

    log("HTTP API under wrk")
    api = api_benchmark(target, workdir, customer_ids, args.api_seconds, args.api_workers)

    size = index.meta
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"outage service benchmark: {size['customers']:,} customers, "
          f"{size['transformers']:,} transformers, {size['feeders']:,} feeders, "
          f"{size['nodes']:,} nodes, {size['edges']:,} edges ({db})")
    print(f"index build {build_s:.1f} s; load {load_s * 1000:.1f} ms (memory-mapped .npy)\n")
    header = (f"{'query':<38} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'cpu p99':>9} "
              f"{'n':>6} {'same answers':>13} {'p50 ratio':>10}  target")
    print(header)
    print("-" * len(header))

    def row(name: str, t: dict[str, float], same: str = "", ratio: str = "",
            target: str = "") -> None:
        print(f"{name:<38} {t['p50']:>9.3f} {t['p99']:>9.3f} {t['max']:>9.3f} "
              f"{t['cpu_p99']:>9.3f} {t['n']:>6} {same:>13} {ratio:>10}  {target}")

    row("count affected by 1 device: index", count_t, target="p99 <= 1 ms")
    row("  networkx reachability", nx_t, f"{nx_same}/{k}",
        f"{nx_t['p50'] / count_t['p50']:.0f}x")
    for name, p in peers.items():
        row(f"  {name}", p["count"], f"{p['same']}/{k}",
            f"{p['count']['p50'] / count_t['p50']:.0f}x")
    row("feeder-breaker full list: index", list_t, target="<= 50 ms")
    for name, p in peers.items():
        row(f"  {name}", p["list"], f"{p['same_lists']}/{kb}",
            f"{p['list']['p50'] / list_t['p50']:.0f}x")
    row("customer status (100 events): index", status_t, target="p99 <= 1 ms")
    print(f"\n{out_now} of {len(statuses)} sampled customers out under the 100 events; "
          f"feeder lists averaged {np.mean([len(x) for x in lists]):.0f} customers")
    print(f"HTTP API status: {api['rps']:,.0f} requests/s, p99 {api['p99']} "
          f"({api['workers']} uvicorn workers, wrk -t1 -c32, {args.api_seconds} s) "
          f"{' '.join(api['errors'])}  target >= 2,000/s")
    print(f"  same uvicorn, bare ASGI app: {api['bare']['rps']:,.0f} requests/s, "
          f"p99 {api['bare']['p99']} (the HTTP stack's ceiling here)")
    engine.dispose()
    if os.environ.get("GRIDTOPO_BENCH_KEEP") is None and not args.workdir and not args.db:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
