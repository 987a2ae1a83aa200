"""Benchmark the synthetic source generator at the reference size, against a naive peer.

    python benchmarks/generate.py [--customers N] [--out DIR] [--peer-rows R] [--keep]

Runs :func:`gridtopo.synthetic.generate` in a child process (so its peak RSS is measured on
its own, via ``RUSAGE_CHILDREN``) for N customers (default: Guangdong's 14,297,503) and then,
also in a child, a naive peer that writes R customer rows (default 1,000,000) with one Python
loop iteration per row through the csv module into a GBK text stream — the obvious way to
write such a generator. Prints one table with customers, seconds, rows/s over all files,
peak RSS and output bytes, and the generator's speed-up on customer rows over the peer.
Targets: full size in ≤ 10 minutes and ≤ 8 GB peak RSS.

The output goes to a temporary directory under /tmp that is deleted afterwards, unless
``--out`` (kept) or ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_CUSTOMERS = 14_297_503

_GENERATOR = """
import json, sys
from pathlib import Path
from gridtopo.synthetic import generate
def progress(stage, done, total):
    if stage == "customers":
        print(f"  {stage}: {done:,}/{total:,}", file=sys.stderr, flush=True)
m = generate(Path(sys.argv[1]), int(sys.argv[2]), seed=0, progress=progress)
print(json.dumps({"rows": sum(f.rows for f in m.files), "bytes": sum(f.bytes for f in m.files),
                  "customer_rows": m.table_counts["customers"]}))
"""

# The peer: the same 16 customer columns with the same kinds of draws (weighted surname,
# one or two given-name characters, lane/house numbers, phone prefix, coordinates offset from
# the transformer, a recent timestamp), one Python iteration per row, csv module, GBK.
_PEER = """
import csv, json, math, random, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(0)
surnames = list("陈李黄张梁林刘吴罗何郑杨谢郭邓冯曾周蔡许")
weights = [1 / (k + 1) ** 0.9 for k in range(len(surnames))]
given = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美兰霞平刚桂玲建文辉国荣健")
prefixes = ["130", "135", "138", "139", "150", "158", "186", "188", "199"]
header = ["户号", "户名", "用电地址", "联系电话", "台区编号", "台区名称", "线路名称", "变电站名称",
          "电能表资产号", "相别", "电压等级", "合同容量", "用户状态", "经度", "纬度", "更新时间"]
ref = 1735603200
with open(path, "w", encoding="gbk", newline="") as fh:
    w = csv.writer(fh, lineterminator="\\n")
    w.writerow(header)
    for i in range(n):
        area = i // 70
        t_lon, t_lat = 113.0 + (area % 997) * 1e-3, 23.0 + (area % 991) * 1e-3
        name = rnd.choices(surnames, weights)[0] + rnd.choice(given)
        if rnd.random() < 0.7:
            name += rnd.choice(given)
        d, a = rnd.uniform(30, 300), rnd.uniform(0, 2 * math.pi)
        lat = t_lat + d * math.sin(a) / 6371008.8 * 180 / math.pi
        lon = t_lon + d * math.cos(a) / (6371008.8 * math.cos(math.radians(t_lat))) * 180 / math.pi
        phase = rnd.choice("ABC")
        w.writerow([
            f"03{100000000 + 3 * i + rnd.randint(0, 2):011d}", name,
            f"广东省佛山市南海区龙华村{rnd.randint(1, 30)}巷{rnd.randint(1, 120)}号",
            rnd.choice(prefixes) + f"{rnd.randint(0, 99999999):08d}", f"TQ4406{area:07d}",
            "龙华村#1台区", "10kV龙华线", "龙华变电站", f"0310{8000000000 + 7 * i:018d}", phase,
            "220V", rnd.choice((4, 6, 8, 10, 12)), "正常" if rnd.random() > 0.012 else "销户",
            f"{lon:.6f}", f"{lat:.6f}",
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ref - rnd.randrange(63072000))),
        ])
print(json.dumps({"rows": n}))
"""


def _run_child(code: str, args: list[str]) -> tuple[dict[str, int], float, int]:
    """Run ``code`` in a fresh interpreter; return its JSON result, seconds and peak RSS (KiB).

    RUSAGE_CHILDREN reports the largest child so far, so children are run smallest first."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds, peak_kib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=REFERENCE_CUSTOMERS)
    parser.add_argument("--out", type=Path, help="output directory (kept); default a temp dir")
    parser.add_argument("--peer-rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary output")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="gridtopo-bench-", dir="/tmp"))
    out = args.out or work / "province"
    try:
        peer_file = work / "peer_customers.csv"
        print(f"peer: {args.peer_rows:,} rows, per-row loop + csv module ...", file=sys.stderr)
        peer, peer_s, peer_rss = _run_child(_PEER, [str(args.peer_rows), str(peer_file)])
        peer_bytes = peer_file.stat().st_size
        peer_file.unlink()
        print(f"generator: {args.customers:,} customers into {out} ...", file=sys.stderr)
        gen, gen_s, gen_rss = _run_child(_GENERATOR, [str(out), str(args.customers)])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("generator (all files)", args.customers, gen_s, gen["rows"] / gen_s, gen_rss,
         gen["bytes"]),
        ("naive peer (customers.csv only)", peer["rows"], peer_s, peer["rows"] / peer_s,
         peer_rss, peer_bytes),
    ]
    print(f"{'run':<34}{'customers':>12}{'seconds':>10}{'rows/s':>13}{'peak RSS':>11}"
          f"{'output':>11}")
    for name, n, s, rate, rss_kib, size in rows:
        print(f"{name:<34}{n:>12,}{s:>10.1f}{rate:>13,.0f}{rss_kib / 1024 ** 2:>9.2f}GB"
              f"{size / 1e9:>9.2f}GB")
    gen_customer_rate = gen["customer_rows"] / gen_s
    print(f"speed-up on customer rows (generator, end to end incl. network and truth, vs peer):"
          f" {gen_customer_rate / (peer['rows'] / peer_s):.1f}x")
    ok = gen_s <= 600 and gen_rss <= 8 * 1024 ** 2
    if args.customers >= REFERENCE_CUSTOMERS:
        print("targets (<= 600 s, <= 8 GB):", "met" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
