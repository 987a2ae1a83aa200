"""Outage notices at scale (issue 15): how long writing them takes, on both stores.

A synthetic model is generated and ingested (SQLite, and PostgreSQL with ``--pg``); feeder
breakers are taken until their outage reaches ``--target`` customers (20,000 by default).
Timed, in the same run for every store:

* ``planned``: declaring a planned outage ten days ahead — its impact, and the planned
  notices and reminders of every customer written in the event's transaction;
* ``release``: releasing the planned notices when their lead time comes (seq, deliveries);
* ``feed``: reading them all through the pull feed, 1,000 a page;
* ``fault`` / ``restored``: declaring the same devices as a fault (``acknowledged`` at once)
  and closing it (``restored``).

Target: notices for a planned outage of 20,000 customers generated in ≤ 2 s::

    .venv/bin/python benchmarks/notice_writing.py --customers 60000 \\
        --pg postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from gridtopo.clock import now_seconds
from gridtopo.db import open_engine, upgrade
from gridtopo.outages import events
from gridtopo.outages.notices import NoticeRules
from gridtopo.outages.outbox import FEED_LIMIT, feed, release_due
from gridtopo.topology.index import QueryIndex, load_index
from gridtopo.topology.queries import impact

RULES = NoticeRules(quiet_hours=("00:00", "00:00"))


def _sources(workdir: Path, customers: int, seed: int) -> Path:
    from gridtopo.synthetic import generate

    sources = workdir / "sources"
    if not sources.exists():
        generate(sources, customers, seed=seed)
    return sources


def _model(url: str, sources: Path) -> None:
    from gridtopo.pipeline import ingest

    engine = open_engine(url, create=True)
    upgrade(engine)
    ingest(engine, sources)
    engine.dispose()


def _breakers(index: QueryIndex, target: int) -> tuple[list[str], int]:
    """Feeder breakers until their outage reaches ``target`` customers."""
    chosen: list[str] = []
    total = 0
    for edge in range(len(index.edge_ids)):
        if index.kind_name(edge) != "breaker":
            continue
        device = index.edge_ids[edge].decode()
        customers = impact(index, [device]).customers
        if customers:
            chosen.append(device)
            total += customers
        if total >= target:
            break
    return chosen, total


def measure(url: str, target: int) -> dict[str, Any]:
    """The timings of one store."""
    engine = open_engine(url)
    index = load_index(engine)
    devices, customers = _breakers(index, target)
    row: dict[str, Any] = {"store": engine.dialect.name, "customers": customers}
    start = now_seconds() + dt.timedelta(days=10)
    t = time.perf_counter()
    planned = events.declare(engine, index, devices, kind="planned", started_at=start,
                             expected_end=start + dt.timedelta(hours=6), notice_rules=RULES)
    row["planned_s"] = time.perf_counter() - t
    row["notices"] = planned["notices"].get("planned", 0) + planned["notices"].get("reminder", 0)
    t = time.perf_counter()
    row["released"] = release_due(engine, now=start - dt.timedelta(hours=167))["released"]
    row["release_s"] = time.perf_counter() - t
    t = time.perf_counter()
    after, read = 0, 0
    while True:
        page = feed(engine, after=after, limit=FEED_LIMIT)
        if not page["items"]:
            break
        read += len(page["items"])
        after = page["next"]
    row["feed_s"], row["read"] = time.perf_counter() - t, read
    events.close(engine, planned["id"], index=index, notice_rules=RULES)
    t = time.perf_counter()
    fault = events.declare(engine, index, devices, notice_rules=RULES)
    row["fault_s"] = time.perf_counter() - t
    row["acknowledged"] = fault["notices"].get("acknowledged", 0)
    t = time.perf_counter()
    closed = events.close(engine, fault["id"], index=index, notice_rules=RULES)
    row["restored_s"] = time.perf_counter() - t
    row["restored"] = closed["notices"].get("restored", 0)
    engine.dispose()
    return row


def report(rows: list[dict[str, Any]]) -> None:
    """Print the table."""
    print(f"{'store':<11}{'customers':>10}{'notices':>9}{'planned s':>10}{'release s':>10}"
          f"{'feed s':>8}{'ack':>8}{'fault s':>8}{'restored':>9}{'close s':>8}")
    for r in rows:
        print(f"{r['store']:<11}{r['customers']:>10,}{r['notices']:>9,}{r['planned_s']:>10.2f}"
              f"{r['release_s']:>10.2f}{r['feed_s']:>8.2f}{r['acknowledged']:>8,}"
              f"{r['fault_s']:>8.2f}{r['restored']:>9,}{r['restored_s']:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--target", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--pg", help="PostgreSQL server URL: a scratch database is made there")
    parser.add_argument("--workdir", help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        sources = _sources(workdir, args.customers, args.seed)
        urls = [f"sqlite:///{workdir / 'notices.db'}"]
        (workdir / "notices.db").unlink(missing_ok=True)
        if args.pg:
            admin = open_engine(args.pg).execution_options(isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS gridtopo_notices_bench"))
                conn.execute(text("CREATE DATABASE gridtopo_notices_bench"))
            urls.append(args.pg.rsplit("/", 1)[0] + "/gridtopo_notices_bench")
        rows = []
        for url in urls:
            _model(url, sources)
            rows.append(measure(url, args.target))
        report(rows)


if __name__ == "__main__":
    main()
