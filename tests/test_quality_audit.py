"""Audit rules against generator truth, the findings lifecycle and scorecards, on both stores."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from gridtopo.db import open_engine, upgrade
from gridtopo.pipeline import ingest
from gridtopo.quality.audit import AuditResult, run_audit
from gridtopo.quality.config import load_config, parse_now
from gridtopo.quality.findings import list_findings, set_status
from gridtopo.quality.truth import EXPECTED, accuracy, expected_instances

NOW = parse_now("2024-12-31")  # the generator's reference date (truth/manifest.json)
DENSE = {  # every kind the audit catches, at rates a 3,000-customer model still shows
    "area_orphan": 0.05, "transformer_gcj02": 0.1, "retired_transformer_live_customers": 0.05,
    "transformer_orphan_feeder": 0.05, "area_wrong_pms_id": 0.05,
    "transformer_wrong_area_code": 0.05, "area_missing_pms_id": 0.05,
    "transformer_missing_area_code": 0.05, "customer_orphan_area": 0.005,
    "customer_gcj02": 0.01, "customer_misplaced": 0.005, "name_mismatch": 0.005,
    "stale_record": 0.01, "island": 0.5, "loop": 0.5, "transformer_bad_value": 0.05,
    "customer_bad_value": 0.005,
}


def audit(engine: Engine) -> AuditResult:
    """One audit without the GX suites (tested in test_quality_report)."""
    return run_audit(engine, load_config(None, now=NOW), gx=False)


@pytest.fixture(scope="session")
def dense_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model with every defect kind the audit should catch."""
    from gridtopo.synthetic import generate

    out = tmp_path_factory.mktemp("dense") / "sources"
    generate(out, 3000, seed=7, defects=DENSE)
    return out


def test_recall_per_defect_kind(db_url: str, dense_sources: Path) -> None:
    engine = open_engine(db_url)
    upgrade(engine)
    ingest(engine, dense_sources)
    result = audit(engine)
    score = accuracy(result.findings, expected_instances(dense_sources / "truth", db_url))
    engine.dispose()
    injected = {k: r for k, r in score["recall"].items() if r["injected"]}
    assert set(injected) == set(EXPECTED), "the dense model must inject every audited kind"
    low = {k: r for k, r in injected.items() if r["recall"] < 0.95}
    assert not low, low
    assert score["unmatched_share"] <= 0.01, score["unmatched_by_rule"]
    # A customer's feeder name is reported exactly when it names another feeder, however the
    # clerks spelled the right one.
    reported = result.findings.filter(pl.col("rule") == "customer_feeder_name_mismatch")
    mismatched = pl.read_csv(dense_sources / "truth/defects.csv", infer_schema=False).filter(
        pl.col("defect") == "name_mismatch")
    assert set(reported["entity_id"]) == set(mismatched["entity_id"]) != set()


def test_statuses_carry_over_and_fixed_findings_reopen(model_engine: Engine) -> None:
    first = audit(model_engine)
    assert first.findings["id"].null_count() == 0
    assert set(first.findings["status"]) == {"open"}
    stale = {f["entity_id"]: f for f in list_findings(model_engine, rule="record_stale")}
    offset = list_findings(model_engine, rule="customer_offset_gcj02")
    assert stale and offset
    waived, wrongly_fixed = next(iter(stale.values())), offset[0]
    set_status(model_engine, [waived["id"]], "waived", note="known")
    set_status(model_engine, [wrongly_fixed["id"]], "fixed")

    second = audit(model_engine)
    by_id = {f["id"]: f for f in list_findings(model_engine)}
    assert by_id[waived["id"]]["status"] == "waived"
    assert by_id[waived["id"]]["status_note"] == "known"
    assert by_id[wrongly_fixed["id"]]["status"] == "open"
    assert "reopened" in by_id[wrongly_fixed["id"]]["status_note"]
    assert second.changes == {"new": 0, "reopened": 1, "resolved": 0}
    assert by_id[waived["id"]]["first_seen_run"] == first.run_id
    assert by_id[waived["id"]]["last_seen_run"] == second.run_id


def test_corrected_data_resolves_finding_and_moves_scorecard(model_engine: Engine) -> None:
    before = audit(model_engine)
    stale = [f for f in list_findings(model_engine, rule="record_stale")
             if f["entity_type"] == "customer"]
    with model_engine.begin() as conn:
        conn.execute(text("UPDATE customers SET updated_at = :t WHERE customer_id = :c"),
                     {"t": NOW.replace(tzinfo=None), "c": stale[0]["entity_id"]})
    after = audit(model_engine)
    status = {f["id"]: f["status"] for f in list_findings(model_engine, rule="record_stale")}
    assert status[stale[0]["id"]] == "fixed"
    assert after.changes["resolved"] == 1
    assert after.scores["province"]["timeliness"] > before.scores["province"]["timeliness"]
    with model_engine.connect() as conn:
        runs = conn.execute(text("SELECT count(DISTINCT audit_run_id) FROM scorecards "
                                 "WHERE level = 'province'")).scalar_one()
    assert runs == 2


def test_waived_findings_do_not_count_against_scores(model_engine: Engine) -> None:
    before = audit(model_engine)
    ids = [f["id"] for f in list_findings(model_engine, rule="record_stale")]
    set_status(model_engine, ids, "waived")
    after = audit(model_engine)
    assert after.scores["province"]["timeliness"] == 1.0 > before.scores["province"]["timeliness"]


def test_accepted_fix_becomes_decision_that_next_ingest_applies(
    model_engine: Engine, synthetic_sources: Path
) -> None:
    before = audit(model_engine)
    orphans = list_findings(model_engine, rule="customer_area_unknown")
    fixable = [f for f in orphans if f["suggested_fix"]]
    assert fixable, orphans
    finding = fixable[0]
    fix = finding["suggested_fix"]
    assert fix["link_kind"] == "customer_transformer" and "m away on the same feeder" in fix["text"]
    result = set_status(model_engine, [finding["id"]], "accepted", note="site visit")
    assert result["decisions"] == 1
    with model_engine.connect() as conn:
        decision = conn.execute(text(
            "SELECT link_kind, decision, origin FROM steward_decisions WHERE entity_id = :e"),
            {"e": fix["entity_id"]}).one()
    assert tuple(decision) == ("customer_transformer", fix["to_id"], f"finding {finding['id']}")

    ingest(model_engine, synthetic_sources)
    with model_engine.connect() as conn:
        link = conn.execute(text(
            "SELECT transformer_id, link_method FROM customers WHERE customer_id = :e"),
            {"e": fix["entity_id"]}).one()
    assert tuple(link) == (fix["to_id"], "steward")
    after = audit(model_engine)
    status = {f["id"]: f["status"] for f in list_findings(model_engine)}
    assert status[finding["id"]] == "fixed"
    assert after.scores["province"]["completeness"] > before.scores["province"]["completeness"]


def test_scorecards_cover_every_level(model_engine: Engine) -> None:
    result = audit(model_engine)
    cards = result.scorecards
    levels = dict(cards.group_by("level").len().iter_rows())
    with model_engine.connect() as conn:
        feeders = conn.execute(text("SELECT count(*) FROM feeders")).scalar_one()
        stored = conn.execute(text("SELECT count(*) FROM scorecards")).scalar_one()
    assert levels["province"] == 1 and levels["feeder"] == feeders
    assert levels["station"] >= 1 and levels["region"] >= 1
    assert stored == cards.height
    assert cards.filter(pl.col("level") == "region")["entity_id"].to_list() == ["东莞"]
    scores = cards.select("completeness", "accuracy", "timeliness", "overall")
    assert scores.min_horizontal().min() >= 0 and scores.max_horizontal().max() <= 1
