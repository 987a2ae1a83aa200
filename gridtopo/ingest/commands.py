"""``gridtopo runs`` and ``gridtopo quarantine``: what ingest did, and the rows it set aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridtopo.cli_support import Settings, emit, json_option, pass_settings
from gridtopo.ingest import history


@click.command("runs")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@pass_settings
def runs_command(settings: Settings, limit: int, as_json: bool) -> None:
    """List ingest runs, newest first: status, totals, and why a failed run failed."""
    found = history.runs(settings.model_engine(), limit)

    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            totals = r["totals"] or {}
            counts = (f"read {totals.get('rows_read', 0):,}, quarantined "
                      f"{totals.get('rows_quarantined', 0):,}") if totals else ""
            click.echo(f"run {r['run_id']:>4}  {r['status']:<9} {r['outcome'] or '':<9} "
                       f"{r['started_at']:%Y-%m-%d %H:%M}  {counts}  {r['source']}")
            if r["message"]:
                click.echo(f"           {r['message']}")

    emit(found, as_json, human)


@click.command("quarantine")
@click.option("--run", "run_id", type=int, help="Run id (default: the latest run).")
@click.option("--table", help="Only rows of this canonical table, e.g. customers.")
@click.option("--rule", help="Only rows that broke this rule, e.g. not_a_number.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rows to this CSV (UTF-8 with BOM, opens in Excel) instead.")
@json_option
@pass_settings
def quarantine_command(
    settings: Settings,
    run_id: int | None,
    table: str | None,
    rule: str | None,
    limit: int | None,
    csv_path: Path | None,
    as_json: bool,
) -> None:
    """Show the rows an ingest run quarantined: file, line, field, value, rule and why."""
    rows = history.quarantined(settings.model_engine(), run_id, table=table, rule=rule,
                               limit=limit)
    if csv_path is not None:
        with csv_path.open("wb") as handle:
            handle.write("\ufeff".encode())
            rows.write_csv(handle)
        emit({"rows": rows.height, "csv": str(csv_path)}, as_json,
             lambda r: click.echo(f"wrote {r['rows']:,} quarantined rows to {r['csv']}"))
        return

    def human(records: list[dict[str, Any]]) -> None:
        for r in records:
            click.echo(f"{Path(r['file']).name}:{r['line']}  [{r['rule']}]  {r['message']}")
        click.echo(f"{len(records):,} quarantined rows")

    emit(rows.to_dicts(), as_json, human)
