"""``gridtopo ingest|runs|quarantine``: load exports, and see what each run did and set aside."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import command_progress, emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.db import migrate
from gridtopo.db import runs as history
from gridtopo.db.runlock import READ_WAIT_MS, reap_interrupted, refuse_if_running
from gridtopo.ingest.tables import TABLES
from gridtopo.reconcile.shapes import UNLINKED_CODES


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--profile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML profile describing exports that the built-in aliases do not cover.")
@click.option("--decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Steward decisions CSV (entity, link, decision); stored, they outlive the run.")
@click.option("--force", is_flag=True, help="Reload even when the inputs are unchanged.")
@click.option("--changes", is_flag=True,
              help="SOURCE is a change file (增量): new and changed rows in the usual layout, "
                   "removed keys under deletions/; applied to the live model, all or nothing.")
@click.option("--allow-shrink", "allow_shrink", multiple=True, metavar="TABLE",
              type=click.Choice(list(TABLES)),
              help="Let a full export empty or shrink TABLE (below half the rows the model "
                   "holds, or without its file), which is otherwise refused; repeatable.")
@click.option("--wait", is_flag=True,
              help="When another ingest of the database is running, wait for it instead of "
                   "being refused.")
@click.option("--unlinked", "unlinked_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the entities that could not be linked, with the reason, to this CSV.")
@click.option("--engine", "engine_name", type=click.Choice(["embedded", "partitioned", "spark"]),
              default="embedded", show_default=True,
              help="embedded: one partition in this process; partitioned: each subdirectory "
                   "of SOURCE a partition, in this process; spark: the same on Apache Spark.")
@click.option("--master", default="local[2]", show_default=True,
              help="Spark master for --engine spark: local[N], spark://host:port or yarn.")
@json_option
@pass_settings
def ingest(
    settings: Settings,
    source: Path,
    profile: Path | None,
    decisions: Path | None,
    force: bool,
    changes: bool,
    allow_shrink: tuple[str, ...],
    wait: bool,
    unlinked_path: Path | None,
    engine_name: str,
    master: str,
    as_json: bool,
) -> None:
    """Read both systems' exports under SOURCE, reconcile them and load the model.

    Files are found by name (customers.csv, 用户档案.xlsx, edges.gpkg, ...) and headers by
    their Chinese or English aliases; rows that break a rule are quarantined with the reason,
    never dropped. The run is atomic: if it fails, the previous model stays as it was. A
    full export missing a table's file, or far smaller than the model, is refused (see
    --allow-shrink); one ingest runs at a time per database (see --wait).
    """
    from gridtopo.pipeline import ingest as run_ingest

    engine = settings.engine(create=True)
    if not wait:  # before reading a database that a running load may hold locked
        refuse_if_running(engine)
    migrate.upgrade(engine)
    with command_progress(as_json) as progress, stages(engine_name, master) as halves:
        report = run_ingest(engine, source, profile=profile, decisions=decisions, force=force,
                            changes=changes, allow_shrink=allow_shrink, wait=wait,
                            progress=progress, **halves)
    if unlinked_path is not None and report.unlinked is not None:
        report.unlinked.write_csv(unlinked_path)
    emit(report.to_dict(), as_json, _print_ingest)


@contextmanager
def stages(engine_name: str, master: str) -> Iterator[dict[str, Any]]:
    """The reader and reconciler of ``--engine``: none for the embedded default."""
    if engine_name == "embedded":
        yield {}
        return
    from gridtopo.partitions import PartitionedRun

    executor = None
    if engine_name == "spark":
        from gridtopo.spark import SparkExecutor, spark_session

        executor = SparkExecutor(spark_session(master))
    run = PartitionedRun(executor)
    try:
        yield {"reader": run.read, "reconciler": run.reconcile}
    finally:
        run.close()
        if executor is not None:
            executor.spark.stop()


def _print_ingest(r: dict[str, Any]) -> None:
    click.echo(f"run {r['run_id']}: {r['status']} from {r['source']}")
    click.echo(f"  {'table':<18} {'file':<40} {'enc':<9} {'read':>10} {'loaded':>10} "
               f"{'quarant.':>9} {'merged':>7} {'fields':>7}")
    for f in r["files"]:
        click.echo(f"  {f['table']:<18} {Path(f['path']).name:<40} {f['encoding'] or '-':<9} "
                   f"{f['rows_read']:>10,} {f['rows_loaded']:>10,} {f['rows_quarantined']:>9,} "
                   f"{f['rows_merged']:>7,} {f['fields_quarantined']:>7,}")
    t = r["totals"]
    click.echo(f"  {'total':<18} {'':<40} {'':<9} {t['rows_read']:>10,} {t['rows_loaded']:>10,} "
               f"{t['rows_quarantined']:>9,} {t['rows_merged']:>7,} "
               f"{t['fields_quarantined']:>7,}")
    click.echo("  (quarant.: rows refused whole; fields: unusable fields of rows loaded "
               "without them)")
    for kind, s in r["reconciliation"].items():
        methods = ", ".join(f"{m} {n:,}" for m, n in s["by_method"].items()) or "none"
        click.echo(f"  {kind:<21} linked {s['linked']:>10,} ({methods}); "
                   f"unlinked {s['unlinked']:,}")
        for code, n in s["unlinked_by_code"].items():
            click.echo(f"      {n:>8,}  {UNLINKED_CODES.get(code, code)}")
    for warning in r["warnings"]:
        click.echo(f"  warning: {warning}")



@click.command("runs")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@pass_settings
def runs_command(settings: Settings, limit: int, as_json: bool) -> None:
    """List ingest runs, newest first: status, totals, and why a failed run failed."""
    engine = settings.model_engine(lock_wait_ms=READ_WAIT_MS)
    reap_interrupted(engine)
    found = history.runs(engine, limit)

    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            totals = r["totals"] or {}
            counts = (f"read {totals.get('rows_read', 0):,}, quarantined "
                      f"{totals.get('rows_quarantined', 0):,} rows + "
                      f"{totals.get('fields_quarantined', 0):,} fields") if totals else ""
            click.echo(f"run {r['run_id']:>4}  {r['status']:<11} {r['outcome'] or '':<9} "
                       f"{r['started_at']:%Y-%m-%d %H:%M}  {counts}  {r['source']}")
            if r["message"]:
                click.echo(f"           {r['message']}")

    emit(found, as_json, human)


@click.command("quarantine")
@click.option("--run", "run_id", type=int, help="Run id (default: the latest run).")
@click.option("--table", help="Only rows of this canonical table, e.g. customers.")
@click.option("--rule", help="Only rows that broke this rule, e.g. not_a_number.")
@click.option("--kept/--refused", "kept", default=None,
              help="Only fields set aside in rows that were loaded (--kept), or only rows "
                   "refused whole (--refused); default both.")
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
    kept: bool | None,
    limit: int | None,
    csv_path: Path | None,
    as_json: bool,
) -> None:
    """Show what an ingest run quarantined: file, line, field, value, rule and why.

    A row with an unusable field that it can do without (a capacity that is no number, an
    unknown status or phase...) is loaded without it: that field is listed with row_kept
    true ("kept"); a row refused whole is listed once ("refused").
    """
    rows = history.quarantined(settings.model_engine(), run_id, table=table, rule=rule,
                               kept=kept, limit=limit)
    if csv_path is not None:
        with csv_path.open("wb") as handle:
            handle.write("\ufeff".encode())
            rows.write_csv(handle)
        emit({"rows": rows.height, "csv": str(csv_path)}, as_json,
             lambda r: click.echo(f"wrote {r['rows']:,} quarantined rows to {r['csv']}"))
        return

    def human(records: list[dict[str, Any]]) -> None:
        for r in records:
            state = "kept" if r["row_kept"] else "refused"
            click.echo(f"{Path(r['file']).name}:{r['line']}  {state:<7}  [{r['rule']}]  "
                       f"{r['message']}")
        fields = sum(1 for r in records if r["row_kept"])
        click.echo(f"{len(records) - fields:,} rows refused, {fields:,} fields set aside in "
                   "kept rows")

    emit(rows.to_dicts(), as_json, human)
