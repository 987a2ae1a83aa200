"""Ingest benchmark: generate → ingest (read + reconcile + load) on each store, at Guangdong size.

Prints, per store, a table of stages (seconds, rows/s, peak RSS of the ingest process), the
accuracy of customer→transformer links against the generator's truth (overall and per method),
and beside it the same 1M customer rows loaded the naive ways (pandas ``to_sql``, ORM
``add_all``) versus gridtopo's bulk path, as the ratio to beat.

    python benchmarks/ingest.py                         # full size: 14,297,503 customers
    python benchmarks/ingest.py --customers 200000 --naive-rows 100000
    python benchmarks/ingest.py --keep /tmp/gridtopo-full   # keep databases for other benchmarks
    python benchmarks/ingest.py --customers 1000000 --incremental   # change-proportional runs

Targets (issue 4): ingest + reconcile + load ≤ 5 min per store, peak RSS ≤ 8 GB;
precision ≥ 99.5 %, recall ≥ 99 % of recoverable customer links.

``--incremental`` (issue 14) times, per store, after a first ingest and a saved index: an
unchanged re-run (≤ 15 s), a re-export with 1 % of customers changed (phones, areas, new and
closed accounts) and 0.5 % of edges (≤ 0.3 × a full ingest of the same sources into an empty
database, peak RSS ≤ the full run's) and the same change as a change file (≤ 30 s, index
update included), and prints them against that full ingest.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

FULL = 14_297_503
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_ingest(url: str, sources: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    """Child process: one ingest, reporting its stage times and its own peak RSS."""
    from gridtopo.db import open_engine, upgrade
    from gridtopo.db.read.frames import read_frame
    from gridtopo.pipeline import ingest
    from gridtopo.reconcile.accuracy import link_accuracy, read_truth

    engine = open_engine(url, create=True)
    upgrade(engine)
    started = time.perf_counter()
    report = ingest(engine, Path(sources))
    total = time.perf_counter() - started
    rss = _rss_mb()
    with engine.connect() as conn:
        links = read_frame(conn, "SELECT customer_id, transformer_id, link_method FROM "
                           "customers WHERE transformer_id IS NOT NULL",
                           {"from_id": pl.Utf8, "to_id": pl.Utf8, "method": pl.Utf8})
    accuracy = link_accuracy(links, read_truth(Path(sources) / "truth"))
    queue.put({"report": report.to_dict(), "total": total, "rss_mb": rss,
               "accuracy": accuracy})


def _run_timed(url: str, sources: str, changes: bool, build: bool, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    """Child process: one ingest (of a full export, or ``changes``), its seconds and peak RSS;
    ``build``: save the query index afterwards (so that later runs must keep it current)."""
    from gridtopo.db import open_engine, upgrade
    from gridtopo.pipeline import ingest
    from gridtopo.topology.index import load_index

    engine = open_engine(url, create=True)
    upgrade(engine)
    started = time.perf_counter()
    report = ingest(engine, Path(sources), changes=changes)
    total = time.perf_counter() - started
    rss = _rss_mb()
    if build:
        load_index(engine)
    queue.put({"status": report.status, "seconds": report.seconds, "total": total,
               "rss_mb": rss, "index": report.index, "loaded": report.loaded,
               "load_seconds": report.load_seconds})


def changed_exports(base: Path, out: Path, changes: Path, seed: int) -> dict[str, int]:
    """Write ``out`` (a full re-export of ``base`` with 1 % of customers and 0.5 % of edges
    changed) and ``changes`` (the same change as a change file); return the counts."""
    import random

    rng = random.Random(seed)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(changes, ignore_errors=True)
    counts: dict[str, int] = {}
    for folder in ("marketing", "distribution"):
        for path in (base / folder).glob("*.csv"):
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / folder / path.name)
    name = "marketing/customers.csv"
    customers = pl.read_csv((base / name).read_bytes().decode("gbk").encode(),
                            infer_schema=False)
    n = customers.height
    picks = rng.sample(range(n), n // 100)
    share = len(picks) // 10
    phone, area, closed = picks[:4 * share], picks[4 * share:7 * share], picks[7 * share:8 * share]
    fresh = picks[8 * share:]
    areas = customers["台区编号"].unique().to_list()
    row = pl.int_range(n, eager=True)
    changed = customers.with_columns(
        pl.when(row.is_in(phone)).then(pl.lit("13912345678")).otherwise(pl.col("联系电话"))
        .alias("联系电话"),
        pl.when(row.is_in(area)).then(pl.lit(rng.choice(areas))).otherwise(pl.col("台区编号"))
        .alias("台区编号"),
        pl.when(row.is_in(closed)).then(pl.lit("销户")).otherwise(pl.col("用户状态"))
        .alias("用户状态"))
    new = customers[sorted(fresh)].with_columns(
        (pl.lit("0999") + pl.col("户号").str.slice(4)).alias("户号"))
    changed = pl.concat([changed, new])
    changed.write_csv(out / name)
    delta = changed.join(customers, on=customers.columns, how="anti", nulls_equal=True)
    (changes / "marketing").mkdir(parents=True)
    delta.write_csv(changes / name)
    counts["customers"] = delta.height
    name = "distribution/edges.csv"
    edges = pl.read_csv(base / name, infer_schema=False)
    flip = rng.sample(range(edges.height), edges.height // 200)
    row = pl.int_range(edges.height, eager=True)
    switching = pl.col("kind").is_in(["switch", "breaker", "recloser", "fuse"])
    moved = edges.with_columns(
        pl.when(row.is_in(flip) & switching)
        .then(pl.when(pl.col("normal_open") == "true").then(pl.lit("false"))
              .otherwise(pl.lit("true")))
        .otherwise(pl.col("normal_open")).alias("normal_open"),
        pl.when(row.is_in(flip) & ~switching)
        .then((pl.col("length_m").cast(pl.Float64) + 1).round(1).cast(pl.Utf8))
        .otherwise(pl.col("length_m")).alias("length_m"))
    moved.write_csv(out / name)
    delta = moved.join(edges, on=edges.columns, how="anti", nulls_equal=True)
    (changes / "distribution").mkdir(parents=True)
    delta.write_csv(changes / name)
    counts["edges"] = delta.height
    return counts


def incremental(backends: tuple[str, ...], workdir: Path, sources: Path, seed: int) -> None:
    """The change-proportional runs of the module docstring, one table per store."""
    day1, delta = workdir / "day1", workdir / "changes1"
    counts = changed_exports(sources, day1, delta, seed)
    print(f"\n## change-proportional ingest: {counts['customers']:,} customer rows and "
          f"{counts['edges']:,} edge rows changed")
    context = mp.get_context("spawn")

    def run(url: str, folder: Path, changes: bool = False, build: bool = False
            ) -> dict[str, Any]:
        queue: mp.Queue = context.Queue()  # type: ignore[type-arg]
        child = context.Process(target=_run_timed, args=(url, str(folder), changes, build,
                                                         queue))
        child.start()
        result = queue.get()
        child.join()
        return result

    for backend in backends:
        reexport = _fresh_url(backend, workdir, "incr_reexport")
        changes = _fresh_url(backend, workdir, "incr_changes")
        empty = _fresh_url(backend, workdir, "incr_fresh")
        for directory in workdir.glob("incr_*.state"):
            shutil.rmtree(directory)
        first = run(reexport, sources, build=True)
        run(changes, sources, build=True)
        rows = {"first ingest (day 0)": first,
                "unchanged re-run": run(reexport, sources),
                "re-export, 1 % changed": run(reexport, day1),
                "change file, same change": run(changes, delta, changes=True),
                "full ingest of day 1 (empty db)": run(empty, day1)}
        full = rows["full ingest of day 1 (empty db)"]
        print(f"\n### {backend}")
        print(f"{'run':<32} {'status':<9} {'seconds':>8} {'× full':>7} {'RSS GB':>7} "
              f"{'index':<11} stages")
        for label, r in rows.items():
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items())
            print(f"{label:<32} {r['status']:<9} {r['total']:>8.1f} "
                  f"{r['total'] / full['total']:>7.2f} {r['rss_mb'] / 1024:>7.2f} "
                  f"{r['index']:<11} {stages}")
            if r["load_seconds"]:
                print(f"{'':<32} load: " + ", ".join(
                    f"{k} {v:.1f}" for k, v in r["load_seconds"].items() if v >= 0.1))
        print("targets: re-export ≤ 0.30 × full and RSS ≤ full; change file ≤ 30 s; "
              "unchanged ≤ 15 s")


def _fresh_url(backend: str, workdir: Path, name: str) -> str:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    subprocess.run(["psql", "-qX", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                    "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def ingest_table(backend: str, result: dict[str, Any]) -> None:
    report = result["report"]
    rows = report["totals"]["rows_read"]
    print(f"\n## ingest on {backend}: {rows:,} source rows, "
          f"{report['loaded'].get('customers', 0):,} customers loaded")
    print(f"{'stage':<12} {'seconds':>9} {'rows/s':>12}   (read/reconcile/total: source rows)")
    for stage, seconds in report["seconds"].items():
        print(f"{stage:<12} {seconds:>9.1f} {rows / seconds if seconds else 0:>12,.0f}")
        if stage == "load":
            for part, part_seconds in report["load_seconds"].items():
                table = part.removeprefix("insert ")
                count = report["loaded"].get(table, 0)
                print(f"  {part:<24} {part_seconds:>7.1f} "
                      f"{count / part_seconds if count and part_seconds else 0:>12,.0f}")
    print(f"{'total':<12} {result['total']:>9.1f} {rows / result['total']:>12,.0f}"
          f"   peak RSS {result['rss_mb'] / 1024:.2f} GB")
    acc = result["accuracy"]
    print(f"customer→transformer: precision {acc['precision']:.4%}, recall {acc['recall']:.4%} "
          f"of {acc['recoverable']:,} recoverable")
    for method, score in acc["by_method"].items():
        print(f"  {method:<18} {score['links']:>11,} links  precision {score['precision']:.4%}"
              f"  recall share {score['recall']:.4%}")


def naive_comparison(backend: str, workdir: Path, rows: int, seed: int) -> None:
    """The same customer rows loaded by pandas to_sql, ORM add_all and gridtopo's bulk path
    (generated at that size: reading the full-size exports to keep 1M rows would be waste)."""
    from sqlalchemy.orm import Session

    from gridtopo.db import open_engine, upgrade
    from gridtopo.db.bulk import bulk_insert
    from gridtopo.db.models import Customer
    from gridtopo.ingest import read_sources
    from gridtopo.synthetic import generate

    sources = workdir / f"naive-sources-{rows}-{seed}"
    if not (sources / "truth" / "manifest.json").exists():
        generate(sources, rows, seed=seed, overwrite=True)
    frame = read_sources(sources).tables["customers"].frame.head(rows)
    shaped = frame.select("customer_id", "area_code", "area_name", "feeder_name",
                          "station_name", "meter_id", "phase", "voltage_class", "contract_kva",
                          "status", "updated_at")
    print(f"\n## the same {shaped.height:,} customer rows on {backend}, three ways")
    print(f"{'method':<28} {'seconds':>9} {'rows/s':>12} {'vs gridtopo':>12}")
    timings: dict[str, float] = {}

    def timed(label: str, load: Any) -> None:
        engine = open_engine(_fresh_url(backend, workdir, "naive"), create=True)
        upgrade(engine)
        started = time.perf_counter()
        load(engine)
        timings[label] = time.perf_counter() - started
        engine.dispose()

    def gridtopo_bulk(engine: Any) -> None:
        with engine.begin() as conn:
            bulk_insert(conn, "customers", shaped.with_columns(
                frame["lon"], frame["lat"]), points={"geom": ("lon", "lat")})

    def pandas_to_sql(engine: Any) -> None:
        shaped.to_pandas().to_sql("customers", engine, if_exists="append", index=False,
                                  chunksize=10_000)

    def orm_add_all(engine: Any) -> None:
        with Session(engine) as session:
            session.add_all(Customer(**r) for r in shaped.with_columns(
                pl.col("updated_at").dt.replace_time_zone("UTC")).iter_rows(named=True))
            session.commit()

    timed("gridtopo bulk (with geometry)", gridtopo_bulk)
    timed("pandas to_sql", pandas_to_sql)
    timed("ORM add_all", orm_add_all)
    base = timings["gridtopo bulk (with geometry)"]
    for label, seconds in timings.items():
        print(f"{label:<28} {seconds:>9.1f} {shaped.height / seconds:>12,.0f} "
              f"{seconds / base:>11.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=FULL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--naive-rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--incremental", action="store_true",
                        help="time change-proportional runs (issue 14) instead of the load")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the ingested databases here (SQLite file gridtopo.db, "
                             "PostgreSQL database gridtopo_full) for other benchmarks")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gridtopo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sources = workdir / f"sources-{args.customers}-{args.seed}"
    if not (sources / "truth" / "manifest.json").exists():
        from gridtopo.synthetic import generate

        started = time.perf_counter()
        generate(sources, args.customers, seed=args.seed, overwrite=True)
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.0f} s")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    if args.incremental:
        os.chdir(workdir)  # PostgreSQL keeps the index and the sources in the working directory
        incremental(backends, workdir, sources, args.seed)
        return
    context = mp.get_context("spawn")
    target = args.keep or workdir
    target.mkdir(parents=True, exist_ok=True)
    for backend in backends:
        name = "gridtopo" if backend == "sqlite" else (
            "gridtopo_full" if args.keep else "gridtopo_bench")
        url = _fresh_url(backend, target, name)
        queue: mp.Queue = context.Queue()  # type: ignore[type-arg]
        child = context.Process(target=_run_ingest, args=(url, str(sources), queue))
        child.start()
        result = queue.get()
        child.join()
        ingest_table(backend, result)
    for backend in backends:
        naive_comparison(backend, workdir, args.naive_rows, args.seed)
    if args.keep:
        (args.keep / "READY").write_text(f"{args.customers} customers, seed {args.seed}\n")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
