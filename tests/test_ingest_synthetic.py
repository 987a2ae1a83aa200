"""Generated exports: every injected defect that ingest is meant to catch is caught at the line
the generator's truth names, and clean exports quarantine nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gridtopo.ingest import SourceBundle, read_sources
from gridtopo.reconcile.accuracy import link_accuracy, read_truth
from gridtopo.reconcile.links import reconcile
from gridtopo.synthetic import generate

CAUGHT_BY_RULES = ("customer_missing_required", "customer_bad_value", "transformer_bad_value")


def _quarantine(bundle: SourceBundle, root: Path) -> pl.DataFrame:
    paths = [Path(f.path).relative_to(root).as_posix() for f in bundle.files]
    return pl.concat([t.quarantine for t in bundle.tables.values()]).with_columns(
        pl.col("file").replace_strict(list(range(len(paths))), paths).alias("path"))


def test_injected_defects_are_quarantined_or_merged_at_their_line(tmp_path: Path) -> None:
    generate(tmp_path, 5000, seed=3, defects="default,transformer_bad_value=0.05")
    truth = pl.read_csv(tmp_path / "truth" / "defects.csv", infer_schema=False).with_columns(
        pl.col("line").cast(pl.Int64))
    bundle = read_sources(tmp_path)
    quarantine = _quarantine(bundle, tmp_path)
    for kind in (*CAUGHT_BY_RULES, "customer_duplicate_exact", "customer_duplicate_conflict"):
        assert truth.filter(pl.col("defect") == kind).height > 0, kind

    expected = truth.filter(pl.col("defect").is_in(CAUGHT_BY_RULES)).select(
        pl.col("file").alias("path"), "line")
    by_rule = quarantine.filter(pl.col("rule") != "duplicate_conflict").select("path", "line")
    assert sorted(by_rule.rows()) == sorted(expected.rows())

    # a customer with a bad 合同容量, 相别 or 更新时间 is loaded without that value
    bad = truth.filter(pl.col("defect") == "customer_bad_value")
    kept = quarantine.filter(pl.col("path") == "marketing/customers.csv").filter(
        pl.col("line").is_in(bad["line"].to_list()))
    assert kept.height == bad.height and kept["row_kept"].all()
    assert set(bad["entity_id"]) <= set(bundle.tables["customers"].frame["customer_id"])

    conflicts = truth.filter(pl.col("defect") == "customer_duplicate_conflict")
    flagged = quarantine.filter(pl.col("rule") == "duplicate_conflict")
    assert sorted(flagged["value"].to_list()) == sorted(conflicts["entity_id"].to_list())
    customers = bundle.tables["customers"].frame
    for entity in conflicts["entity_id"]:
        assert customers.filter(pl.col("customer_id") == entity).height == 1

    exact = truth.filter(pl.col("defect") == "customer_duplicate_exact")
    account = next(f for f in bundle.files if f.table == "customers")
    assert account.rows_merged == exact.height
    loaded_lines = set(customers["_line"].to_list())
    quarantined_lines = set(quarantine.filter(pl.col("path") == "marketing/customers.csv")
                            ["line"].to_list())
    for line in exact["line"]:
        assert line not in loaded_lines and line not in quarantined_lines
    for entity in exact["entity_id"]:
        assert customers.filter(pl.col("customer_id") == entity).height == 1


def test_clean_exports_quarantine_nothing(tmp_path: Path) -> None:
    manifest = generate(tmp_path, 5000, seed=4, defects={})
    bundle = read_sources(tmp_path)
    assert bundle.warnings == []
    for account in bundle.files:
        table = account.table
        assert account.rows_quarantined == 0 and account.rows_merged == 0, account
        assert account.rows_loaded == manifest.table_counts[table]
        assert bundle.tables[table].frame.height == manifest.table_counts[table]
    sha = {Path(f.path).relative_to(tmp_path).as_posix(): f.sha256 for f in bundle.files}
    assert sha == {f.path: f.sha256 for f in manifest.files if f.path in sha}


def test_bad_transformer_values_cost_no_customer_link(tmp_path: Path) -> None:
    """Every transformer the generator gave a negative capacity or an unknown status is loaded
    without that value, and its customers keep their chain: recall is what the same exports
    give without the defect."""
    recalls = []
    for rate in (0.0, 0.2):
        out = tmp_path / f"rate-{rate}"
        generate(out, 3000, seed=5, defects={"transformer_bad_value": rate})
        bundle = read_sources(out)
        transformers = bundle.tables["transformers"]
        truth = pl.read_csv(out / "truth" / "defects.csv", infer_schema=False).filter(
            pl.col("defect") == "transformer_bad_value")
        assert (truth.height > 0) == (rate > 0)
        account = next(f for f in bundle.files if f.table == "transformers")
        assert transformers.frame.height == account.rows_read
        assert account.fields_quarantined == truth.height
        set_aside = transformers.quarantine.filter(pl.col("row_kept"))
        assert sorted(set_aside["entity_id"].to_list()) == sorted(truth["entity_id"].to_list())
        assert sorted(set_aside["field"].to_list()) == sorted(truth["field"].to_list())
        bad = transformers.frame.filter(pl.col("transformer_id").is_in(truth["entity_id"]
                                                                        .implode()))
        assert bad.height == truth.height and bad["capacity_kva"].null_count() == (
            truth["field"] == "capacity_kva").sum()
        links = reconcile({name: t.frame for name, t in bundle.tables.items()}).customer_links
        predicted = links.drop_nulls("transformer_id").select(
            pl.col("customer_id").alias("from_id"), pl.col("transformer_id").alias("to_id"),
            pl.col("link_method").alias("method"))
        recalls.append(link_accuracy(predicted, read_truth(out / "truth"))["recall"])
    assert recalls[1] == recalls[0] == 1.0
