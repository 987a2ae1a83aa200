"""Score audit findings against the synthetic generator's truth (``truth/defects.csv``).

For each defect kind the audit is meant to catch, recall is the share of injected instances
for which the expected rule reported the entity. Island instances are counted per cut-off
transformer (``truth/transformer_links.csv``, ``energized = false``), loop instances by the
feeder of the extra edge. Precision is measured the other way round: the findings that match no
injected defect at all (by entity), which should stay near zero.

>>> from gridtopo.quality.audit import run_audit
>>> from gridtopo.quality.config import load_config, parse_now
>>> result = run_audit(engine, load_config(None, now=parse_now("2024-12-31")), gx=False)
>>> score = accuracy(result.findings, expected_instances(sources / "truth", url))
>>> score["recall"]["customer_gcj02"]["recall"], score["unmatched_by_rule"]
(1.0, {'transformer_overloaded': 1})
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from sqlalchemy import text

from gridtopo.db import open_engine

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
    "transformer_bad_value": ["field_unreadable"],
    "customer_bad_value": ["field_unreadable"],
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
