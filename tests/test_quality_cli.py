"""``gridtopo audit`` and ``gridtopo findings`` through the CLI: JSON, the gate, the worklist,
and bad input (exit 2, stored findings unchanged)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from gridtopo.cli.main import main

NOW = ("--now", "2024-12-31")


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", url, *args])


def audit_json(url: str, *args: str) -> dict[str, Any]:
    result = run(url, "audit", *NOW, "--no-gx", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def findings(url: str, *args: str) -> list[dict[str, Any]]:
    result = run(url, "findings", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_audit_json_gate_and_worklist(model_db_url: str, tmp_path: Path) -> None:
    summary = audit_json(model_db_url)
    overall = summary["scores"]["province"]["overall"]
    assert 0.5 < overall < 1 and summary["findings"]["total"] > 0
    assert summary["gate"] is None and summary["gx"] is None

    gate = run(model_db_url, "audit", *NOW, "--no-gx", "--fail-under", "1")
    assert gate.exit_code == 1 and "gate failed" in gate.output
    assert run(model_db_url, "audit", *NOW, "--no-gx", "--fail-under", "0.5").exit_code == 0

    stale = findings(model_db_url, "--rule", "record_stale", "--status", "open")
    assert stale and {f["rule"] for f in stale} == {"record_stale"}
    first, second = stale[0]["id"], stale[1]["id"]
    one = run(model_db_url, "findings", "set", str(first), "waived", "--note", "archive")
    assert one.exit_code == 0, one.output
    ids = tmp_path / "ids.csv"
    ids.write_text(f"id,note\n{second},checked\n", encoding="utf-8")
    many = run(model_db_url, "findings", "set", "--file", str(ids), "fixed")
    assert many.exit_code == 0, many.output
    status = {f["id"]: (f["status"], f["status_note"]) for f in findings(model_db_url)}
    assert status[first] == ("waived", "archive") and status[second] == ("fixed", "checked")

    again = audit_json(model_db_url)  # the fixed one is still stale: reopened
    assert again["changes"]["reopened"] == 1
    assert {f["id"] for f in findings(model_db_url, "--status", "waived")} == {first}


def test_bad_input_is_exit_2_and_changes_nothing(model_db_url: str, tmp_path: Path) -> None:
    audit_json(model_db_url)
    before = findings(model_db_url)

    unknown_rule = tmp_path / "rules.toml"
    unknown_rule.write_text("[rules.no_such_rule]\nmax_m = 1\n", encoding="utf-8")
    result = run(model_db_url, "audit", "--config", str(unknown_rule))
    assert result.exit_code == 2 and "unknown rule 'no_such_rule'" in result.output

    unknown_threshold = tmp_path / "thresholds.toml"
    unknown_threshold.write_text("[rules.customer_far_from_transformer]\nmax_km = 2\n",
                                 encoding="utf-8")
    result = run(model_db_url, "audit", "--config", str(unknown_threshold))
    assert result.exit_code == 2 and "unknown threshold 'max_km'" in result.output

    ids = tmp_path / "ids.csv"
    ids.write_text(f"id\n{before[0]['id']}\n999999\n", encoding="utf-8")
    result = run(model_db_url, "findings", "set", "--file", str(ids), "waived")
    assert result.exit_code == 2 and "unknown finding id(s): 999999" in result.output
    result = run(model_db_url, "findings", "set", "12", "done")
    assert result.exit_code == 2

    assert findings(model_db_url) == before


def test_audit_of_unloaded_database_is_exit_2(db_url: str, empty_db_url: str) -> None:
    for url in (db_url, empty_db_url):
        result = run(url, "audit", "--no-gx")
        assert result.exit_code == 2, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "gridtopo ingest" in run(db_url, "audit", "--no-gx").output
    assert findings(db_url) == []


def test_readme_rule_configuration_loads(tmp_path: Path) -> None:
    from gridtopo.quality.config import load_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## For data stewards: audits")[1]
    example = section.split("**Configuration**")[1].split("```\n")[1]
    path = tmp_path / "rules.toml"
    path.write_text(example, encoding="utf-8")
    config = load_config(path)
    assert config.threshold("record_stale", "max_age_days") == 365
    assert config.severity("customer_far_from_transformer") == "error"
    assert not config.enabled("feeder_no_tie") and config.now.year == 2024
