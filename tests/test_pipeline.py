"""The whole ingest pipeline on generated sources, on both stores: accounting, accuracy against
the generator's truth, idempotence, atomicity, steward decisions and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from gridtopo.cli.main import main
from gridtopo.db import load as load_module
from gridtopo.db import open_engine
from gridtopo.db.models import IngestFile, IngestRun, QuarantinedRow, Snapshot
from gridtopo.db.read.frames import read_frame
from gridtopo.pipeline import ingest
from gridtopo.reconcile.accuracy import link_accuracy, read_truth


def customer_links(engine: Engine) -> pl.DataFrame:
    with engine.connect() as conn:
        return read_frame(
            conn, "SELECT customer_id, transformer_id, link_method, link_confidence "
                  "FROM customers WHERE transformer_id IS NOT NULL ORDER BY customer_id",
            {"from_id": pl.Utf8, "to_id": pl.Utf8, "method": pl.Utf8, "confidence": pl.Float64},
        )


def model_dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Content of the model, without bookkeeping columns, for equality checks."""
    queries = {
        "customers": "SELECT customer_id, area_code, status, contract_kva, valid_from_run "
                     "FROM customers ORDER BY customer_id",
        "links": "SELECT kind, from_id, to_id, method, confidence FROM links "
                 "ORDER BY kind, from_id",
        "edges": "SELECT edge_id, kind, from_node, to_node, normal_open FROM edges "
                 "ORDER BY edge_id",
    }
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(q))] for name, q in queries.items()}


def test_accounting_adds_up_and_is_stored(model_engine: Engine) -> None:
    with Session(model_engine) as conn:
        files = conn.scalars(select(IngestFile)).all()
        assert {f.table_name for f in files} == {"stations", "feeders", "edges", "transformers",
                                                  "transformer_areas", "customers"}
        for f in files:
            assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_merged, f.path
            assert len(f.sha256) == 64
        def entries(kept: bool) -> int | None:
            return conn.scalar(select(func.count()).select_from(QuarantinedRow)
                               .where(QuarantinedRow.row_kept.is_(kept)))

        # one entry per refused row, one per field set aside in a kept row
        assert entries(False) == sum(f.rows_quarantined for f in files) > 0
        assert entries(True) == sum(f.fields_quarantined for f in files) > 0
        customers = next(f for f in files if f.table_name == "customers")
        stored = conn.scalar(text("SELECT count(*) FROM customers"))
        assert stored == customers.rows_loaded
        assert conn.scalar(select(IngestRun.status)) == "succeeded"


def test_customer_links_meet_the_accuracy_target(
    model_engine: Engine, synthetic_sources: Path
) -> None:
    score = link_accuracy(customer_links(model_engine), read_truth(synthetic_sources / "truth"))
    assert score["precision"] >= 0.999, score
    assert score["recall"] >= 0.999, score


def test_same_input_twice_changes_nothing(model_engine: Engine, synthetic_sources: Path) -> None:
    before = model_dump(model_engine)
    again = ingest(model_engine, synthetic_sources)
    assert again.status == "unchanged"
    assert model_dump(model_engine) == before
    forced = ingest(model_engine, synthetic_sources, force=True)
    assert forced.status == "loaded"
    assert not any(any(c.values()) for c in forced.changes.values())
    assert model_dump(model_engine) == before
    with model_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Snapshot)) == 1
        assert conn.scalar(select(func.count()).select_from(IngestRun)) == 3


def test_failed_run_leaves_previous_model_and_says_why(
    model_engine: Engine, synthetic_sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = model_dump(model_engine)
    real_clear = load_module.clear_model

    def clear_then_fail(conn: object) -> None:
        real_clear(conn)  # type: ignore[arg-type]
        raise RuntimeError("disk full while loading")

    monkeypatch.setattr(load_module, "clear_model", clear_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(model_engine, synthetic_sources, force=True)
    assert model_dump(model_engine) == before
    with model_engine.connect() as conn:
        status, message = conn.execute(
            select(IngestRun.status, IngestRun.message).order_by(IngestRun.id.desc()).limit(1)
        ).one()
    assert status == "failed" and "disk full" in message


def test_steward_decisions_override_and_survive_reruns(
    model_engine: Engine, synthetic_sources: Path, tmp_path: Path
) -> None:
    links = customer_links(model_engine)
    customer, old_target = links.row(0)[:2]
    other = links.filter(pl.col("to_id") != old_target)["to_id"][0]
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(f"entity,link,decision,note\n{customer},customer,{other},site visit\n"
                         f"{links.row(1)[0]},customer_transformer,none,\n", encoding="utf-8")
    ingest(model_engine, synthetic_sources, decisions=decisions)
    after = dict(customer_links(model_engine).select("from_id", "to_id").iter_rows())
    assert after[customer] == other
    assert links.row(1)[0] not in after
    rerun = ingest(model_engine, synthetic_sources, force=True)
    assert rerun.status == "loaded"
    assert dict(customer_links(model_engine).select("from_id", "to_id").iter_rows())[
        customer] == other


def test_cli_ingest_prints_accounting_and_writes_unlinked(
    empty_db_url: str, synthetic_sources: Path, tmp_path: Path
) -> None:
    unlinked = tmp_path / "unlinked.csv"
    result = CliRunner().invoke(main, ["--db", empty_db_url, "ingest", str(synthetic_sources),
                                       "--unlinked", str(unlinked), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    totals = report["totals"]
    assert totals["rows_read"] == (totals["rows_loaded"] + totals["rows_quarantined"]
                                   + totals["rows_merged"])
    assert report["reconciliation"]["customer_transformer"]["linked"] > 0
    frame = pl.read_csv(unlinked)
    assert frame.columns == ["kind", "entity_id", "code", "reason"]
    assert frame.height == sum(k["unlinked"] for k in report["reconciliation"].values())
    human = CliRunner().invoke(main, ["--db", empty_db_url, "ingest", str(synthetic_sources)])
    assert "unchanged" in human.output and "customers.csv" in human.output


def test_cli_export_csv_has_the_chain(model_db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["--db", model_db_url, "export", "csv", str(out), "--json"])
    assert result.exit_code == 0, result.output
    chain = pl.read_csv(out / "customer_links.csv", infer_schema=False)
    assert chain.columns == ["customer_id", "transformer_id", "feeder_id", "station_id",
                             "method", "confidence"]
    engine = open_engine(model_db_url)
    assert chain.height == json.loads(result.output)["files"]["customers.csv"]
    complete = chain.drop_nulls(["transformer_id", "feeder_id", "station_id"]).height
    assert complete / chain.height > 0.98
    engine.dispose()
    again = CliRunner().invoke(main, ["--db", model_db_url, "export", "csv", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_cli_ingest_missing_directory_is_usage_error(empty_db_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--db", empty_db_url, "ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_runs_and_quarantine_show_what_a_steward_must_fix(
    model_db_url: str, synthetic_sources: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    runs = json.loads(runner.invoke(main, ["--db", model_db_url, "runs", "--json"]).output)
    assert runs[0]["status"] == "succeeded" and runs[0]["totals"]["rows_quarantined"] > 0
    shown = json.loads(runner.invoke(main, ["--db", model_db_url, "quarantine", "--json"]).output)
    totals = runs[0]["totals"]
    assert len(shown) == totals["rows_quarantined"] + totals["fields_quarantined"]
    truth = pl.read_csv(synthetic_sources / "truth" / "defects.csv", infer_schema=False)

    def lines_of(defect: str) -> set[tuple[str, int]]:
        return {(Path(f).name, int(line)) for f, line in truth.filter(
            pl.col("defect") == defect).select("file", "line").iter_rows()}

    refused = {(Path(r["file"]).name, r["line"]) for r in shown if not r["row_kept"]}
    kept = {(Path(r["file"]).name, r["line"]) for r in shown if r["row_kept"]}
    # a blank 台区编号 refuses the customer; a blank 户名, a bad 合同容量, 相别 or 更新时间 only
    # its field
    blank = {(Path(f).name, int(line)) for f, line, field in truth.filter(
        pl.col("defect") == "customer_missing_required").select("file", "line", "field").iter_rows()
        if field == "台区编号"}
    assert blank <= refused
    assert lines_of("customer_missing_required") - blank <= kept
    assert lines_of("customer_bad_value") and lines_of("customer_bad_value") <= kept
    only = json.loads(runner.invoke(main, ["--db", model_db_url, "quarantine", "--table",
                                           "customers", "--rule", "missing_required",
                                           "--json"]).output)
    assert only and {(r["table"], r["rule"]) for r in only} == {("customers",
                                                                 "missing_required")}
    assert len(only) < len(shown)
    out = tmp_path / "q.csv"
    written = runner.invoke(main, ["--db", model_db_url, "quarantine", "--csv", str(out)])
    assert written.exit_code == 0 and out.read_bytes().startswith("\ufeff".encode())
    assert pl.read_csv(out).height == len(shown)
    unknown = runner.invoke(main, ["--db", model_db_url, "quarantine", "--run", "999"])
    assert unknown.exit_code == 2 and "999" in unknown.output
