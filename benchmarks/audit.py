"""Audit accuracy against generator truth, and audit time and memory, on one store.

For each injected defect kind the audit is meant to catch (``detected_by`` names an audit) it
prints the recall: the share of injected instances for which the expected rule found the
entity. Island instances are counted per cut-off transformer (``truth/transformer_links.csv``
``energized = false``), loop instances by the feeder of the extra edge. It also prints the
share of findings that match no injected defect, and the rows ingest quarantined per rule
(those defects are ingest's, not the audit's).

    .venv/bin/python benchmarks/audit.py --db sqlite:///m.db --truth sources/truth [--gx]

Figures are for the stored model as it is; use a copy (SQLite file, PostgreSQL ``TEMPLATE``)
because the audit writes findings.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from sqlalchemy import text

from gridtopo.db import open_engine
from gridtopo.quality.audit import run_audit
from gridtopo.quality.config import load_config, parse_now
from gridtopo.quality.truth import accuracy, expected_instances


def main() -> None:
    """Run the audit once and print accuracy and cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--now", default="2024-12-31")
    parser.add_argument("--gx", type=Path, help="keep the GX project here (runs the suites)")
    args = parser.parse_args()
    engine = open_engine(args.db)
    t0 = time.perf_counter()
    result = run_audit(engine, load_config(None, now=parse_now(args.now)), args.gx,
                       gx=args.gx is not None)
    wall = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    with engine.connect() as conn:
        quarantined = dict(conn.execute(text(
            "SELECT rule, count(*) FROM quarantined_rows WHERE run_id = "
            "(SELECT max(id) FROM ingest_runs WHERE status = 'succeeded') GROUP BY rule")).all())
    print(f"audit of {args.db}: {wall:.1f} s wall, peak RSS {peak_gb:.2f} GB, "
          f"{result.findings.height:,} findings; stages "
          + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))
    print("province scores:", json.dumps(result.scores["province"], ensure_ascii=False))
    print(f"quarantined at ingest (not the audit's): {quarantined}")
    if args.truth:
        acc = accuracy(result.findings, expected_instances(args.truth, args.db))
        print(f"{'defect kind':<36} {'injected':>9} {'found':>9} {'recall':>8}")
        for defect, r in acc["recall"].items():
            rec = "-" if r["recall"] is None else f"{r['recall']:.1%}"
            print(f"{defect:<36} {r['injected']:>9,} {r['found']:>9,} {rec:>8}")
        print(f"findings matching no injected defect: {acc['unmatched']:,} of "
              f"{acc['findings']:,} ({acc['unmatched_share']:.2%}) {acc['unmatched_by_rule']}")


if __name__ == "__main__":
    main()
