"""The ``gridtopo`` command line: thin click wrappers over the library.

Conventions shared by every command:

* ``--db URL`` (or ``$GRIDTOPO_DB``) chooses the database, default ``sqlite:///gridtopo.db``;
* ``--json`` prints one JSON document on stdout instead of the human summary;
* exit codes: 0 ok, 1 findings or a failed gate, 2 usage or input error, 3 internal error;
* errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridtopo import __version__
from gridtopo.cli_support import (
    GridtopoGroup,
    Settings,
    command_progress,
    emit,
    json_option,
    pass_settings,
)
from gridtopo.cli_support import display_url as _display_url
from gridtopo.db import engine as db_engine
from gridtopo.db import migrate
from gridtopo.exports.commands import export as export_group
from gridtopo.exports.commands import snapshot as snapshot_group
from gridtopo.ingest.commands import quarantine_command, runs_command
from gridtopo.quality.commands import audit as audit_command
from gridtopo.quality.commands import findings as findings_group
from gridtopo.status import database_status
from gridtopo.topology import commands as topology_commands
from gridtopo.topology.reconcile import UNLINKED_CODES


@click.group(cls=GridtopoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar=db_engine.ENV_VAR,
    metavar="URL",
    help=(
        "Database URL: sqlite:///PATH (SpatiaLite) or postgresql://USER@HOST/DB (PostGIS). "
        f"Default: ${db_engine.ENV_VAR}, else {db_engine.DEFAULT_URL}."
    ),
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="gridtopo")
@click.pass_context
def main(ctx: click.Context, db: str | None, debug: bool) -> None:
    """gridtopo: one station-feeder-transformer-customer model from marketing and
    distribution exports.

    \b
    Start here:
      gridtopo generate sources/ --customers 20000   # synthetic exports with known truth
      gridtopo init                                  # create the database (SpatiaLite)
      gridtopo info                                  # what the database holds

    Exit codes: 0 ok, 1 findings or failed gate, 2 usage or input error, 3 internal error.
    """
    ctx.obj = Settings(db=db, debug=debug)


# --------------------------------------------------------------------------- database


@main.command()
@json_option
@pass_settings
def init(settings: Settings, as_json: bool) -> None:
    """Create the database (if missing) and bring its schema to the current revision."""
    engine = settings.engine(create=True)
    before = migrate.current_revision(engine)
    after = migrate.upgrade(engine)
    result = {
        "database": _display_url(engine),
        "backend": engine.dialect.name,
        "revision_before": before,
        "revision": after,
    }
    emit(
        result,
        as_json,
        lambda r: click.echo(
            f"{r['database']}: schema at revision {r['revision']}"
            + (" (created)" if r["revision_before"] is None else " (already current)"
               if r["revision_before"] == r["revision"] else f" (from {r['revision_before']})")
        ),
    )


@main.group()
def db() -> None:
    """Schema migrations (Alembic) of the chosen database."""


@db.command("upgrade")
@click.argument("revision", default="head")
@json_option
@pass_settings
def db_upgrade(settings: Settings, revision: str, as_json: bool) -> None:
    """Migrate the schema up to REVISION (default: head)."""
    engine = settings.engine(create=True)
    before = migrate.current_revision(engine)
    after = migrate.upgrade(engine, revision)
    emit(
        {"database": _display_url(engine), "revision_before": before, "revision": after},
        as_json,
        lambda r: click.echo(f"{r['database']}: {r['revision_before']} -> {r['revision']}"),
    )


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def db_downgrade(settings: Settings, revision: str, yes: bool, as_json: bool) -> None:
    """Migrate the schema down to REVISION ("base" drops every gridtopo table)."""
    engine = settings.engine()
    if not yes and not click.confirm(
        f"Downgrade {_display_url(engine)} to {revision}? Data in dropped tables is lost",
        err=True,
    ):
        raise click.Abort()
    before = migrate.current_revision(engine)
    after = migrate.downgrade(engine, revision)
    emit(
        {"database": _display_url(engine), "revision_before": before, "revision": after},
        as_json,
        lambda r: click.echo(f"{r['database']}: {r['revision_before']} -> {r['revision']}"),
    )


@db.command("current")
@json_option
@pass_settings
def db_current(settings: Settings, as_json: bool) -> None:
    """Show the schema revision of the database and the newest one gridtopo knows."""
    engine = settings.engine()
    result = {
        "database": _display_url(engine),
        "revision": migrate.current_revision(engine),
        "head": migrate.head_revision(),
    }
    emit(
        result,
        as_json,
        lambda r: click.echo(f"{r['database']}: revision {r['revision']} (head {r['head']})"),
    )


@main.command()
@json_option
@pass_settings
def info(settings: Settings, as_json: bool) -> None:
    """Summarise the database: backend, schema, rows per table, last ingest run."""
    engine = settings.model_engine()
    status = database_status(engine)
    status["database"] = _display_url(engine)

    def human(s: dict[str, Any]) -> None:
        click.echo(f"{s['database']} ({s['backend']} {s['spatial']}), schema {s['revision']}")
        width = max(len(name) for name in s["tables"])
        for name, count in s["tables"].items():
            click.echo(f"  {name:<{width}}  {count:>12,}")
        run = s["last_ingest"]
        click.echo(
            "  last ingest: "
            + (f"run {run['id']} {run['status']} at {run['started_at']}" if run else "none yet")
        )

    emit(status, as_json, human)


# --------------------------------------------------------------------------- synthetic data


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--customers", type=click.IntRange(min=1), default=20_000, show_default=True,
    help="Number of customer accounts; the network is scaled in Guangdong proportions.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--defects", default="default", show_default=True, metavar="RATES",
    help='Defect rates: "default", "none", or KIND=RATE,... (see `gridtopo generate --list`).',
)
@click.option("--list", "list_defects", is_flag=True, help="List the defect kinds and exit.")
@click.option("--overwrite", is_flag=True, help="Replace files a previous run wrote in OUTDIR.")
@json_option
def generate(
    outdir: Path,
    customers: int,
    seed: int,
    defects: str,
    list_defects: bool,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Write synthetic marketing and distribution exports, with truth, to OUTDIR.

    Marketing files get Chinese headers in GBK, distribution files English headers in UTF-8,
    exactly as the input contract describes; OUTDIR/truth/ holds the true links and every
    injected defect. The same seed gives byte-identical files.
    """
    from gridtopo import synthetic

    if list_defects:
        kinds = [
            {"kind": k.name, "table": k.table, "default_rate": k.default_rate,
             "description": k.description, "detected_by": k.detected_by}
            for k in synthetic.DEFECT_KINDS.values()
        ]
        def print_kinds(ks: list[dict[str, Any]]) -> None:
            for k in ks:
                click.echo(f"{k['kind']:<36} {k['default_rate']:>7.2%}  {k['description']}")

        emit(kinds, as_json, print_kinds)
        return
    try:
        rates = synthetic.parse_defect_rates(defects)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--defects") from err
    with command_progress(as_json) as progress:
        manifest = synthetic.generate(
            outdir, customers, seed=seed, defects=rates, overwrite=overwrite,
            progress=progress.update if progress else None,
        )
    result = manifest.to_dict()

    def human(m: dict[str, Any]) -> None:
        click.echo(f"wrote {outdir} in {m['elapsed_seconds']:.1f} s (seed {m['seed']})")
        for table, count in m["table_counts"].items():
            click.echo(f"  {table:<20} {count:>12,}")
        injected = sum(m["defect_counts"].values())
        click.echo(f"  defects injected: {injected:,} (truth in {outdir / 'truth'})")

    emit(result, as_json, human)


# --------------------------------------------------------------------------- ingest


@main.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--profile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML profile describing exports that the built-in aliases do not cover.")
@click.option("--decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Steward decisions CSV (entity, link, decision); stored, they outlive the run.")
@click.option("--force", is_flag=True, help="Reload even when the inputs are unchanged.")
@click.option("--unlinked", "unlinked_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the entities that could not be linked, with the reason, to this CSV.")
@json_option
@pass_settings
def ingest(
    settings: Settings,
    source: Path,
    profile: Path | None,
    decisions: Path | None,
    force: bool,
    unlinked_path: Path | None,
    as_json: bool,
) -> None:
    """Read both systems' exports under SOURCE, reconcile them and load the model.

    Files are found by name (customers.csv, 用户档案.xlsx, edges.gpkg, ...) and headers by
    their Chinese or English aliases; rows that break a rule are quarantined with the reason,
    never dropped. The run is atomic: if it fails, the previous model stays as it was.
    """
    from gridtopo.ingest.run import ingest as run_ingest

    engine = settings.engine(create=True)
    migrate.upgrade(engine)
    with command_progress(as_json) as progress:
        report = run_ingest(engine, source, profile=profile, decisions=decisions, force=force,
                            progress=progress.update if progress else None)
    if unlinked_path is not None and report.unlinked is not None:
        report.unlinked.write_csv(unlinked_path)
    emit(report.to_dict(), as_json, _print_ingest)


def _print_ingest(r: dict[str, Any]) -> None:
    click.echo(f"run {r['run_id']}: {r['status']} from {r['source']}")
    click.echo(f"  {'table':<18} {'file':<40} {'enc':<9} {'read':>10} {'loaded':>10} "
               f"{'quarant.':>9} {'merged':>7}")
    for f in r["files"]:
        click.echo(f"  {f['table']:<18} {Path(f['path']).name:<40} {f['encoding'] or '-':<9} "
                   f"{f['rows_read']:>10,} {f['rows_loaded']:>10,} {f['rows_quarantined']:>9,} "
                   f"{f['rows_merged']:>7,}")
    t = r["totals"]
    click.echo(f"  {'total':<18} {'':<40} {'':<9} {t['rows_read']:>10,} {t['rows_loaded']:>10,} "
               f"{t['rows_quarantined']:>9,} {t['rows_merged']:>7,}")
    for kind, s in r["reconciliation"].items():
        methods = ", ".join(f"{m} {n:,}" for m, n in s["by_method"].items()) or "none"
        click.echo(f"  {kind:<21} linked {s['linked']:>10,} ({methods}); "
                   f"unlinked {s['unlinked']:,}")
        for code, n in s["unlinked_by_code"].items():
            click.echo(f"      {n:>8,}  {UNLINKED_CODES.get(code, code)}")
    for warning in r["warnings"]:
        click.echo(f"  warning: {warning}")


# --------------------------------------------------------------------------- topics

main.add_command(runs_command)
main.add_command(quarantine_command)
main.add_command(export_group)
main.add_command(audit_command)
main.add_command(findings_group)
main.add_command(snapshot_group)
main.add_command(topology_commands.trace)
main.add_command(topology_commands.outage)
main.add_command(topology_commands.index_group)
main.add_command(topology_commands.apikey)
main.add_command(topology_commands.serve)


if __name__ == "__main__":  # pragma: no cover
    main()
