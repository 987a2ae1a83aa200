"""Benchmark exports and snapshot diffs on stored models of different sizes.

    python benchmarks/export.py --db URL [--db URL ...] [--customers] [--formats gpkg,csv]
                                [--load-flow] [--diff-db URL --diff A B] [--out DIR] [--cold]

For every database, each export runs in a child process (so its peak RSS is its own, read
with ``os.wait4``) writing into a temporary directory (deleted afterwards unless ``--out``):
the GeoPackage without customers, with ``--customers`` also with the customers layer, and any
other ``--formats`` (csv, geojson, graphml, cim, cgmes, pandapower). ``--load-flow`` computes
on the exports as a planner would, each in its own child: ``pandapower.runpp`` on the
pandapower JSON (with numba when it is installed, else pandapower's pure-Python path — the
two differ tenfold), power-grid-model's Newton-Raphson on the same network (converted by
:func:`pgm_input`, sources made stiff like pandapower's ``ext_grid``), and pypowsybl's CGMES
import and OpenLoadFlow AC run on the CGMES zip (2.4.15). ``--diff A B`` times
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
from typing import Any

_EXPORT = """
import importlib, json, sys, time
from pathlib import Path
from gridtopo.db import open_engine
url, fmt, out, customers = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
module, function = {"gpkg": ("geo", "export_gpkg"), "geojson": ("geo", "export_geojson"),
                    "csv": ("csv", "export_csv"), "graphml": ("graphml", "export_graphml"),
                    "cim": ("cim", "export_cim"), "cgmes": ("cgmes", "export_cgmes"),
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

_RUNPP = """
import importlib.util, json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandapower as pp
net = pp.from_json(sys.argv[1])
numba = importlib.util.find_spec("numba") is not None
started = time.perf_counter()
pp.runpp(net, numba=numba)
assert net.converged
print(json.dumps([len(net.bus), time.perf_counter() - started,
                  "numba" if numba else "no numba"]))
"""

_PGM = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[2])
import pandapower as pp
from power_grid_model import CalculationMethod, PowerGridModel
from export import pgm_input
data = pgm_input(pp.from_json(sys.argv[1]))
started = time.perf_counter()
model = PowerGridModel(data)
model.calculate_power_flow(symmetric=True, calculation_method=CalculationMethod.newton_raphson)
print(json.dumps([len(data["node"]), time.perf_counter() - started, "newton-raphson"]))
"""

_POWSYBL = """
import json, sys, time
import pypowsybl.loadflow as lf
import pypowsybl.network as pn
started = time.perf_counter()
network = pn.load(sys.argv[1])
loaded = time.perf_counter()
results = lf.run_ac(network, lf.Parameters(component_mode=lf.ComponentMode.ALL_CONNECTED))
done = time.perf_counter()
converged = sum(r.status == lf.ComponentStatus.CONVERGED for r in results)
print(json.dumps([len(network.get_buses()), done - started,
                  f"load {loaded - started:.1f} s + AC {done - loaded:.1f} s, "
                  f"{converged} islands converged"]))
"""

SUFFIX = {"gpkg": ".gpkg", "graphml": ".graphml", "cim": ".xml", "pandapower": ".json",
          "cgmes": ".zip"}


def pgm_input(net: Any) -> dict[str, Any]:
    """power-grid-model input arrays of gridtopo's pandapower network: nodes, lines, a link
    per bus-bus switch (closed = both ends connected), a stiff source per ``ext_grid`` and a
    constant-power ``sym_load`` per load."""
    import numpy as np
    from power_grid_model import ComponentType, DatasetType, LoadGenType, initialize_array

    def table(kind: ComponentType, n: int, first: int) -> Any:
        array = initialize_array(DatasetType.input, kind, n)
        array["id"] = first + np.arange(n)
        return array

    position = {b: i for i, b in enumerate(net.bus.index)}
    node = table(ComponentType.node, len(net.bus), 0)
    node["u_rated"] = net.bus.vn_kv.to_numpy() * 1e3
    first = len(node)
    lines = net.line
    line = table(ComponentType.line, len(lines), first)
    first += len(line)
    line["from_node"] = lines.from_bus.map(position).to_numpy()
    line["to_node"] = lines.to_bus.map(position).to_numpy()
    line["from_status"] = line["to_status"] = lines.in_service.to_numpy().astype(np.int8)
    km = lines.length_km.to_numpy()
    line["r1"], line["x1"] = lines.r_ohm_per_km.to_numpy() * km, lines.x_ohm_per_km.to_numpy() * km
    line["c1"], line["tan1"] = lines.c_nf_per_km.to_numpy() * km * 1e-9, 0.0
    line["i_n"] = lines.max_i_ka.to_numpy() * 1e3
    switches = net.switch
    link = table(ComponentType.link, len(switches), first)
    first += len(link)
    link["from_node"] = switches.bus.map(position).to_numpy()
    link["to_node"] = switches.element.map(position).to_numpy()
    link["from_status"] = link["to_status"] = switches.closed.to_numpy().astype(np.int8)
    grids = net.ext_grid
    source = table(ComponentType.source, len(grids), first)
    first += len(source)
    source["node"] = grids.bus.map(position).to_numpy()
    source["status"], source["u_ref"], source["sk"] = 1, grids.vm_pu.to_numpy(), 1e15
    loads = net.load
    load = table(ComponentType.sym_load, len(loads), first)
    load["node"] = loads.bus.map(position).to_numpy()
    load["status"], load["type"] = 1, LoadGenType.const_power
    load["p_specified"] = loads.p_mw.to_numpy() * 1e6
    load["q_specified"] = loads.q_mvar.to_numpy() * 1e6
    return {"node": node, "line": line, "link": link, "source": source, "sym_load": load}


def child(code: str, *args: str) -> tuple[float, int, float, str]:
    """Run ``code`` with ``args`` in a child: seconds of the work (imports excluded), rows
    it reports, peak RSS in MB, and what it says of the run (may be empty)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(args)}")
    rows, seconds, *note = json.loads(output)
    return float(seconds), int(rows), usage.ru_maxrss / 1024, " ".join(note)


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
    parser.add_argument("--load-flow", action="store_true",
                        help="time pandapower, power-grid-model and pypowsybl load flows "
                             "on the pandapower and CGMES exports")
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
        formats = [f for f in args.formats.split(",") if f]
        if args.load_flow:
            formats += [f for f in ("pandapower", "cgmes") if f not in formats]
        jobs += [(f, False) for f in formats]
        for fmt, customers in jobs:
            work = Path(tempfile.mkdtemp(prefix="gridtopo-export-", dir=args.out))
            target = work / f"export{SUFFIX.get(fmt, '')}"
            if args.cold:
                evict(url)
            try:
                seconds, written, rss, _ = child(_EXPORT, url, fmt, str(target),
                                                 "1" if customers else "0")
                name = fmt + (" +customers" if customers else "") + (" (cold)" if args.cold
                                                                     else "")
                rows.append((label, name, f"{seconds:,.1f}", f"{written:,}", f"{rss:,.0f}"))
                print("  ".join(rows[-1]), file=sys.stderr, flush=True)
                if args.load_flow:
                    flows = {"pandapower": [("pandapower runpp", _RUNPP, ()),
                                            ("power-grid-model", _PGM,
                                             (str(Path(__file__).parent),))],
                             "cgmes": [("pypowsybl AC", _POWSYBL, ())]}.get(fmt, [])
                    for title, code, extra in flows:
                        seconds, buses, rss, note = child(code, str(target), *extra)
                        rows.append((label, f"{title} ({note})", f"{seconds:,.2f}",
                                     f"{buses:,}", f"{rss:,.0f}"))
                        print("  ".join(rows[-1]), file=sys.stderr, flush=True)
            finally:
                if args.out is None:
                    shutil.rmtree(work, ignore_errors=True)
    if args.diff:
        url = args.diff_db or args.db[-1]
        if args.cold:
            evict(url)
        seconds, changes, rss, _ = child(_DIFF, url, *args.diff)
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
