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

import polars as pl
from sqlalchemy import text

from gridtopo.db import open_engine
from gridtopo.quality.audit import run_audit
from gridtopo.quality.config import load_config, parse_now

EXPECTED = {
    "area_orphan": ["area_unlinked"],
    "customer_orphan_area": ["customer_area_unknown"],
    "transformer_gcj02": ["transformer_offset_gcj02"],
    "customer_gcj02": ["customer_offset_gcj02"],
    "customer_misplaced": ["customer_far_from_transformer"],
    "name_mismatch": ["customer_feeder_name_mismatch"],
    "stale_record": ["record_stale"],
    "retired_transformer_live_customers": ["transformer_retired_with_customers"],
    "island": ["transformer_not_energized"],
    "loop": ["feeder_loop"],
    "transformer_orphan_feeder": ["transformer_feeder_code_unknown"],
    "area_missing_pms_id": ["area_pms_id_missing"],
    "transformer_missing_area_code": ["transformer_area_code_missing"],
    "area_wrong_pms_id": ["area_pms_id_conflict"],
    "transformer_wrong_area_code": ["transformer_area_code_conflict"],
}
"""Defect kind → the rule(s) expected to report it."""
TABLE_ENTITY = {"customers": "customer", "transformer_areas": "area",
                "transformers": "transformer", "edges": "edge"}


def expected_instances(truth: Path, engine_url: str) -> pl.DataFrame:
    """One row per (defect, entity_type, entity_id) the audit should report."""
    defects = pl.read_csv(truth / "defects.csv", infer_schema=False)
    rows = defects.filter(~pl.col("defect").is_in(["island", "loop"])).select(
        "defect", pl.col("table").replace_strict(TABLE_ENTITY).alias("entity_type"),
        "entity_id")
    cut = pl.read_csv(truth / "transformer_links.csv", infer_schema=False).filter(
        (pl.col("energized") == "false") & (pl.col("in_export") == "true"))
    islands = cut.select(pl.lit("island").alias("defect"),
                         pl.lit("transformer").alias("entity_type"),
                         pl.col("transformer_id").alias("entity_id"))
    loop_edges = defects.filter(pl.col("defect") == "loop")["entity_id"].to_list()
    engine = open_engine(engine_url)
    with engine.connect() as conn:
        feeders = [r[0] for r in conn.execute(text(
            "SELECT DISTINCT feeder_id FROM edges WHERE edge_id IN (" + ", ".join(
                f"'{e}'" for e in loop_edges) + ")")).all()] if loop_edges else []
    engine.dispose()
    loops = pl.DataFrame({"defect": ["loop"] * len(feeders),
                          "entity_type": ["feeder"] * len(feeders), "entity_id": feeders},
                         schema={"defect": pl.Utf8, "entity_type": pl.Utf8,
                                 "entity_id": pl.Utf8})
    return pl.concat([rows, islands, loops])


def accuracy(findings: pl.DataFrame, expected: pl.DataFrame) -> dict[str, object]:
    """Recall per defect kind and the share of findings matching no defect."""
    recall = {}
    for defect, rules in EXPECTED.items():
        want = expected.filter(pl.col("defect") == defect).unique()
        got = want.join(findings.filter(pl.col("rule").is_in(rules)),
                        on=["entity_type", "entity_id"], how="semi")
        recall[defect] = {"injected": want.height, "found": got.height,
                          "recall": got.height / want.height if want.height else None}
    unmatched = findings.join(expected, on=["entity_type", "entity_id"], how="anti")
    return {"recall": recall, "findings": findings.height, "unmatched": unmatched.height,
            "unmatched_share": unmatched.height / findings.height if findings.height else 0.0,
            "unmatched_by_rule": dict(unmatched.group_by("rule").len().iter_rows())}


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
