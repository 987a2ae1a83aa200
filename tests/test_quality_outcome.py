"""An audit as the command runs it (:func:`gridtopo.quality.outcome.audit_outcome`): the report
folder, the trend across runs in the report, the gate, and a report path that cannot be made
(exit 2 through the CLI, no audit run recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from gridtopo.cli.main import main
from gridtopo.db import open_engine
from gridtopo.quality.config import load_config, parse_now
from gridtopo.quality.errors import ReportPathError
from gridtopo.quality.outcome import audit_outcome

CONFIG = load_config(None, now=parse_now("2024-12-31"))


def audit_runs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_runs")).scalar_one())


def test_report_folder_trend_and_gate(model_engine: Engine, tmp_path: Path) -> None:
    report = tmp_path / "reports" / "2024" / "audit.html"
    first = audit_outcome(model_engine, CONFIG, report=report, gx=False, fail_under=1.0)
    overall = first.result.scores["province"]["overall"]
    assert report.is_file() and first.report is not None
    assert first.report.gx_project == tmp_path / "reports" / "2024" / "audit_gx"
    assert first.gate is not None and first.gate.overall == overall < 1
    assert not first.passed
    summary = first.to_dict()
    assert summary["report"] == str(report)
    assert summary["gate"] == {"fail_under": 1.0, "passed": False}
    assert summary["audit_run_id"] == first.result.run_id

    second = audit_outcome(model_engine, CONFIG, report=report, gx=False, fail_under=overall)
    assert second.passed and second.to_dict()["gate"]["passed"]
    trend = report.read_text(encoding="utf-8").split('<svg id="trend"')[1].split("</svg>")[0]
    assert f">#{first.result.run_id}<" in trend and f">#{second.result.run_id}<" in trend

    plain = audit_outcome(model_engine, CONFIG, gx=False)
    assert plain.passed and plain.report is None and plain.gate is None
    assert "report" not in plain.to_dict() and plain.to_dict()["gate"] is None


def test_unwritable_report_folder_fails_before_auditing(model_db_url: str,
                                                        tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the report's folder should be", encoding="utf-8")
    engine = open_engine(model_db_url)
    with pytest.raises(ReportPathError, match="cannot create"):
        audit_outcome(engine, CONFIG, report=blocker / "audit.html", gx=False)
    assert audit_runs(engine) == 0

    cli = CliRunner()
    failed = cli.invoke(main, ["--db", model_db_url, "audit", "--no-gx", "--report",
                               str(blocker / "audit.html")])
    assert failed.exit_code == 2 and "--report" in failed.output, failed.output
    assert audit_runs(engine) == 0

    report = tmp_path / "out" / "audit.html"
    done = cli.invoke(main, ["--db", model_db_url, "audit", "--now", "2024-12-31", "--no-gx",
                             "--json", "--report", str(report)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["report"] == str(report) and report.is_file()
    assert audit_runs(engine) == 1
    engine.dispose()
