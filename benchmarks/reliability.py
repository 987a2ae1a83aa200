"""Benchmark ``gridtopo report reliability``: how long the indices take for a year of events.

    python benchmarks/reliability.py --db sqlite:///PATH/gridtopo.db [--events N] [--seed S]

Works on a COPY of an SQLite model (``--db`` is only read): declares and closes ``--events``
outages (default 2,000) on random protective devices over the twelve months of 2026,
durations 1–300 minutes, a third planned, then times :func:`reliability_report` for totals,
per month, per feeder and per month × feeder (best of three), printing a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import tempfile
import time
from pathlib import Path

from gridtopo.db import open_engine
from gridtopo.outages.events import close, declare
from gridtopo.quality.reliability import reliability_report
from gridtopo.topology.index import PROTECTIVE_KINDS, load_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="sqlite:///PATH of an ingested model")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    source = Path(args.db.removeprefix("sqlite:///"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gridtopo.db"
        shutil.copyfile(source, path)
        engine = open_engine(f"sqlite:///{path}")
        index = load_index(engine)
        devices = [index.edge_ids[e].decode() for e in range(len(index.edge_ids))
                   if index.kind_name(e) in PROTECTIVE_KINDS]
        rng = random.Random(args.seed)
        year = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        began = time.perf_counter()
        for _ in range(args.events):
            start = year + dt.timedelta(minutes=rng.randrange(365 * 1440))
            event = declare(engine, index, [rng.choice(devices)], started_at=start,
                            kind="planned" if rng.random() < 1 / 3 else "unplanned")
            close(engine, event["id"], ended_at=start + dt.timedelta(minutes=rng.randint(1, 300)))
        setup = time.perf_counter() - began
        print(f"model: {len(index.customer_ids):,} customers, {len(index.feeder_ids):,} "
              f"feeders, {len(devices):,} protective devices; {args.events:,} events declared "
              f"and closed in {setup:.1f} s")
        print(f"{'report':<22} {'rows':>7} {'seconds':>9}")
        for by in ((), ("month",), ("feeder",), ("month", "feeder"), ("region",)):
            best, rows = float("inf"), 0
            for _ in range(3):
                t0 = time.perf_counter()
                report = reliability_report(engine, index, by=by)
                best = min(best, time.perf_counter() - t0)
                rows = len(report["rows"])
            print(f"{' × '.join(by) or 'totals':<22} {rows:>7,} {best:>9.3f}")
        engine.dispose()


if __name__ == "__main__":
    main()
