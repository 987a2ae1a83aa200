"""Benchmark exports and snapshot diffs on stored models of different sizes.

    python benchmarks/export.py --db URL [--db URL ...] [--customers] [--formats gpkg,csv]
                                [--diff-db URL --diff A B] [--out DIR] [--cold]

For every database, each export runs in a child process (so its peak RSS is its own, read
with ``os.wait4``) writing into a temporary directory (deleted afterwards unless ``--out``):
the GeoPackage without customers, with ``--customers`` also with the customers layer, and any
other ``--formats`` (csv, geojson, graphml, cim, pandapower). ``--diff A B`` times
``gridtopo snapshot diff A B`` on ``--diff-db`` (default: the last ``--db``) — it needs two
runs in that database. ``--cold`` first drops the database's files from the operating system's
page cache (``posix_fadvise``; PostgreSQL's own shared buffers stay), so each run reads from
disk as it does at full size on a machine whose memory went to other work — a diff that scans a
table is I/O-bound there, minutes where the warm figure says seconds. On PostgreSQL the server
must be local with its data directory readable. Prints one table: database sizes (feeders,
transformers, edges, customers), format, seconds (of the work, imports excluded), rows
written, peak RSS.
Targets: the Guangdong-size GeoPackage (11,779 feeders, 208,706 transformers) in ≤ 5 minutes
with RSS flat in the model size;
a diff of two full runs in ≤ 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_EXPORT = """
import importlib, json, sys, time
from pathlib import Path
from gridtopo.db import open_engine
url, fmt, out, customers = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
module, function = {"gpkg": ("geo", "export_gpkg"), "geojson": ("geo", "export_geojson"),
                    "csv": ("csv", "export_csv"), "graphml": ("graphml", "export_graphml"),
                    "cim": ("cim", "export_cim"),
                    "pandapower": ("pandapower", "export_pandapower")}[fmt]
run = getattr(importlib.import_module(f"gridtopo.exports.{module}"), function)
engine = open_engine(url)
extra = {"customers": customers} if fmt in ("gpkg", "geojson", "cim") else {}
started = time.perf_counter()
counts = run(engine, out, **extra)
print(json.dumps([sum(counts.values()), time.perf_counter() - started]))
"""

_DIFF = """
import json, sys, time
from gridtopo.db import open_engine
from gridtopo.exports.snapshot import diff
started = time.perf_counter()
d = diff(open_engine(sys.argv[1]), sys.argv[2], sys.argv[3])
print(json.dumps([sum(d.counts.values()), time.perf_counter() - started]))
"""

SUFFIX = {"gpkg": ".gpkg", "graphml": ".graphml", "cim": ".xml", "pandapower": ".json"}


def child(code: str, *args: str) -> tuple[float, int, float]:
    """Run ``code`` with ``args`` in a child: seconds of the work (imports excluded), rows
    it reports, peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(args)}")
    rows, seconds = json.loads(output)
    return float(seconds), int(rows), usage.ru_maxrss / 1024


def _drop_cached(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def evict(url: str) -> None:
    """Drop the files of the database at ``url`` from the OS page cache (a cold start for
    timing that leaves every other file's cache alone)."""
    from sqlalchemy import text

    from gridtopo.db import open_engine

    engine = open_engine(url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            database = Path(str(engine.url.database))
            files = [database, database.with_name(database.name + "-wal")]
        else:
            root = Path(conn.execute(text("SHOW data_directory")).scalar_one())
            relations = conn.execute(text(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND pg_relation_filepath(c.oid) IS NOT NULL")).scalars()
            # a relation over 1 GB continues in segments <file>.1, <file>.2, …
            files = [f for rel in relations
                     for f in [root / rel, *(root / rel).parent.glob(Path(rel).name + ".*")]]
    engine.dispose()
    for path in files:
        if path.exists():
            _drop_cached(path)


def sizes(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from gridtopo.db import open_engine

    engine = open_engine(url)
    with engine.connect() as conn:
        counts = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                  for t in ("feeders", "transformers", "edges", "customers")}
    engine.dispose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", action="append", required=True, help="database URL")
    parser.add_argument("--customers", action="store_true",
                        help="also the GeoPackage with the customers layer")
    parser.add_argument("--formats", default="", help="more formats, comma-separated")
    parser.add_argument("--diff", nargs=2, metavar=("A", "B"))
    parser.add_argument("--diff-db")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cold", action="store_true",
                        help="drop the database's files from the OS page cache before each run")
    args = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    for url in args.db:
        size = sizes(url)
        label = " / ".join(f"{size[t]:,}" for t in ("feeders", "transformers", "edges",
                                                    "customers"))
        jobs = [("gpkg", False)] + ([("gpkg", True)] if args.customers else [])
        jobs += [(f, False) for f in args.formats.split(",") if f]
        for fmt, customers in jobs:
            work = Path(tempfile.mkdtemp(prefix="gridtopo-export-", dir=args.out))
            target = work / f"export{SUFFIX.get(fmt, '')}"
            if args.cold:
                evict(url)
            try:
                seconds, written, rss = child(_EXPORT, url, fmt, str(target),
                                              "1" if customers else "0")
            finally:
                if args.out is None:
                    shutil.rmtree(work, ignore_errors=True)
            name = fmt + (" +customers" if customers else "") + (" (cold)" if args.cold else "")
            rows.append((label, name, f"{seconds:,.1f}", f"{written:,}", f"{rss:,.0f}"))
            print("  ".join(rows[-1]), file=sys.stderr, flush=True)
    if args.diff:
        url = args.diff_db or args.db[-1]
        if args.cold:
            evict(url)
        seconds, changes, rss = child(_DIFF, url, *args.diff)
        rows.append((f"diff {args.diff[0]}→{args.diff[1]}", "snapshot diff"
                     + (" (cold)" if args.cold else ""), f"{seconds:,.1f}", f"{changes:,}",
                     f"{rss:,.0f}"))
    header = ("feeders / transformers / edges / customers", "format", "seconds", "rows",
              "peak RSS MB")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


if __name__ == "__main__":
    main()
