"""Single machine vs the partitioned pipeline (in process, and on Spark local[2]): read +
reconcile time and peak memory on a generated province split into regions.

    python benchmarks/scale.py --customers 200000 --parts 4 --workdir /tmp/gridtopo-scale

Peak memory is this process's (the driver's) maximum resident set (``ru_maxrss``) measured in
a fresh child process per engine; Spark's workers are separate processes (not counted).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _one(engine: str, regions: Path) -> dict[str, float]:
    from gridtopo.ingest import read_sources
    from gridtopo.partitions import PartitionedRun
    from gridtopo.reconcile.links import reconcile

    started = time.perf_counter()
    if engine == "embedded":
        bundle = read_sources(regions)
        reconcile({n: t.frame for n, t in bundle.tables.items()})
    else:
        executor = None
        if engine == "spark":
            from gridtopo.spark import SparkExecutor, spark_session
            executor = SparkExecutor(spark_session("local[2]"))
        run = PartitionedRun(executor)
        bundle = run.read(regions)
        run.reconcile({n: t.frame for n, t in bundle.tables.items()})
        run.close()
    return {"seconds": round(time.perf_counter() - started, 2),
            "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gridtopo-scale"))
    parser.add_argument("--engines", default="embedded,partitioned,spark")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    regions = args.workdir / f"regions-{args.customers}-{args.parts}"
    if args.one:
        print(json.dumps(_one(args.one, regions)))
        return
    if not regions.exists():
        from gridtopo.synthetic import generate
        from gridtopo.synthetic.split import split_by_feeder
        province = args.workdir / f"province-{args.customers}"
        generate(province, args.customers, seed=1, overwrite=True)
        split_by_feeder(province, regions, args.parts, moved=0.05)
    for engine in args.engines.split(","):
        out = subprocess.run([sys.executable, __file__, "--customers", str(args.customers),
                              "--parts", str(args.parts), "--workdir", str(args.workdir),
                              "--one", engine], capture_output=True, text=True, check=True)
        print(engine, out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
