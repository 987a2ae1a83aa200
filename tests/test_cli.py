"""The CLI through click's CliRunner: set-up commands, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gridtopo import __version__
from gridtopo.cli.main import main
from gridtopo.db import head_revision


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0]


def test_version_and_help() -> None:
    assert run("--version").output.strip() == f"gridtopo, version {__version__}"
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "db", "info", "generate"):
        assert command in result.output


def test_init_creates_schema_then_reports_current(empty_db_url: str) -> None:
    first = run("--db", empty_db_url, "init", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["revision_before"] is None
    assert data["revision"] == head_revision()
    again = json.loads(run("--db", empty_db_url, "init", "--json").output)
    assert again["revision_before"] == again["revision"] == head_revision()


def test_db_url_from_environment(empty_db_url: str) -> None:
    result = run("init", "--json", env={"GRIDTOPO_DB": empty_db_url})
    assert result.exit_code == 0
    assert json.loads(result.output)["revision"] == head_revision()


def test_default_database_is_gridtopo_db_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRIDTOPO_DB", raising=False)
    assert run("init").exit_code == 0
    assert (tmp_path / "gridtopo.db").is_file()


def test_info_counts_tables(db_url: str) -> None:
    result = run("--db", db_url, "info", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["revision"] == head_revision()
    assert info["tables"]["customers"] == 0
    assert info["last_ingest"] is None
    assert info["spatial"].split()[0] in ("SpatiaLite", "PostGIS")
    assert "missing" not in info["spatial"]
    human = run("--db", db_url, "info")
    assert "customers" in human.output and "last ingest: none yet" in human.output


def test_db_current_downgrade_upgrade(db_url: str) -> None:
    current = json.loads(run("--db", db_url, "db", "current", "--json").output)
    assert current["revision"] == current["head"] == head_revision()
    down = run("--db", db_url, "db", "downgrade", "base", "--yes", "--json")
    assert down.exit_code == 0, down.output
    assert json.loads(down.output)["revision"] is None
    info = run("--db", db_url, "info")
    assert_one_line_error(info, "gridtopo init")
    up = json.loads(run("--db", db_url, "db", "upgrade", "--json").output)
    assert up["revision"] == head_revision()


def test_downgrade_asks_for_confirmation(db_url: str) -> None:
    result = CliRunner().invoke(main, ["--db", db_url, "db", "downgrade", "base"], input="n\n")
    assert result.exit_code == 1  # click.Abort
    assert json.loads(run("--db", db_url, "db", "current", "--json").output)["revision"]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://root@localhost/x", "unsupported database URL"),
        ("not a url", "cannot parse database URL"),
        ("sqlite://", "names no file"),
        ("sqlite:////no/such/dir/g.db", "does not exist"),
        ("postgresql://postgres@127.0.0.1:1/nope", "cannot connect"),
    ],
)
def test_bad_database_url_is_one_line_exit_2(url: str, needle: str, tmp_path: Path) -> None:
    result = run("--db", url, "init")
    assert_one_line_error(result, needle)


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    result = run("--db", f"sqlite:///{path}", "info")
    assert_one_line_error(result, "no gridtopo database", "gridtopo init")
    assert not path.exists()


def test_unknown_option_is_usage_error() -> None:
    result = run("init", "--frobnicate")
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_debug_shows_traceback(tmp_path: Path) -> None:
    from gridtopo.errors import DatabaseUnavailableError

    with pytest.raises(DatabaseUnavailableError):
        CliRunner().invoke(
            main, ["--debug", "--db", f"sqlite:///{tmp_path}/x/y.db", "info"],
            catch_exceptions=False,
        )


def test_generate_writes_sources_and_refuses_to_clobber(tmp_path: Path) -> None:
    out = tmp_path / "sources"
    result = run("generate", str(out), "--customers", "300", "--seed", "3", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["table_counts"]["customers"] >= 300
    assert (out / "marketing" / "customers.csv").is_file()
    again = run("generate", str(out), "--customers", "300")
    assert_one_line_error(again, "not empty")
    assert run("generate", str(out), "--customers", "300", "--overwrite").exit_code == 0


def test_generate_rejects_unknown_defect_kind(tmp_path: Path) -> None:
    result = run("generate", str(tmp_path / "x"), "--defects", "frobnicate=0.1")
    assert result.exit_code == 2
    assert "frobnicate" in result.output
    assert not (tmp_path / "x").exists()
