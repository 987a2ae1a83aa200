"""``gridtopo export …`` and ``gridtopo snapshot …``: the reconciled model, now or as of an
earlier run, in the formats planners' tools read.

Every export takes ``--as-of DATE|RUN``, ``--station ID``, ``--feeder ID`` (both repeatable),
``--bbox minlon,minlat,maxlon,maxlat`` and ``--overwrite``; an existing output is refused
without it (exit 2).

    gridtopo export gpkg model.gpkg --feeder XL-000001 --as-of 2024-12-31
    gridtopo snapshot diff 3 5 --json
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gridtopo.cli.output import command_progress, emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.db.read.asof import resolve_as_of
from gridtopo.db.read.scope import Scope, parse_bbox

F = TypeVar("F", bound=Callable[..., Any])


def _bbox(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return parse_bbox(value) if value else None


def scope_options(func: F) -> F:
    """``--as-of``, ``--station``, ``--feeder``, ``--bbox``, ``--overwrite`` and ``--json``."""
    options = [
        click.option("--as-of", "as_of", metavar="DATE|RUN",
                     help="The model as of an ingest run id, or the last snapshot on or before "
                          "a date (YYYY-MM-DD) or UTC date-time."),
        click.option("--station", "stations", multiple=True, metavar="ID",
                     help="Only this station's feeders and what hangs on them (repeatable)."),
        click.option("--feeder", "feeders", multiple=True, metavar="ID",
                     help="Only this feeder and what hangs on it (repeatable)."),
        click.option("--bbox", callback=_bbox, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                     help="Only features intersecting this WGS 84 box."),
        click.option("--overwrite", is_flag=True, help="Replace existing output files."),
        json_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _scope(options: dict[str, Any]) -> Scope:
    return Scope(as_of=options.pop("as_of"), stations=tuple(options.pop("stations")),
                 feeders=tuple(options.pop("feeders")), bbox=options.pop("bbox"))


DIRECTORY_EXPORTS = ("export_csv", "export_geojson")
"""Exports into a directory: their JSON reports rows per file under ``files``; the others
report features or objects per layer or class under ``counts``."""


def _print_counts(result: dict[str, Any]) -> None:
    as_of = result["as_of_run"]
    click.echo(f"wrote {result['output']}" + (f" (as of run {as_of})" if as_of else ""))
    for name, n in result.get("files", result.get("counts", {})).items():
        click.echo(f"  {name:<24} {n:>12,}")


def _run_export(settings: Settings, output: Path, options: dict[str, Any],
                export: Callable[..., dict[str, int]]) -> None:
    as_json = options.pop("as_json")
    scope = _scope(options)
    engine = settings.model_engine()
    with command_progress(as_json) as progress:
        counts = export(engine, output, scope,
                        progress=progress, **options)
    with engine.connect() as conn:
        run = resolve_as_of(conn, scope.as_of)
    key = "files" if export.__name__ in DIRECTORY_EXPORTS else "counts"
    emit({"output": str(output), "as_of_run": run, key: counts}, as_json, _print_counts)


_personal = click.option("--personal", is_flag=True,
                         help="Customers' names, addresses and phones unmasked.")
_customers = click.option("--customers", is_flag=True, help="Add the customers layer.")
_load_model = click.option(
    "--load-model", type=click.Choice(["contract", "rating"]), default="contract",
    show_default=True,
    help="Loads from the customers' contract capacity × coincidence factor per class, capped "
         "by the rating (contract), or rating × utilisation (rating).")
_dir = click.Path(file_okay=False, path_type=Path)
_file = click.Path(dir_okay=False, path_type=Path)


@click.group()
def export() -> None:
    """Export the reconciled model (now or --as-of an earlier run)."""


@export.command("csv")
@click.argument("outdir", type=_dir)
@_personal
@scope_options
@pass_settings
def export_csv_command(settings: Settings, outdir: Path, **options: Any) -> None:
    """CSV files that re-import with `gridtopo ingest`, plus customer_links.csv (the chain)."""
    from gridtopo.exports.csv import export_csv

    _run_export(settings, outdir, options, export_csv)


@export.command("gpkg")
@click.argument("path", type=_file)
@_customers
@_personal
@scope_options
@pass_settings
def export_gpkg_command(settings: Settings, path: Path, **options: Any) -> None:
    """A GeoPackage with stations, feeders, edges, transformers (and customers)."""
    from gridtopo.exports.geo import export_gpkg

    _run_export(settings, path, options, export_gpkg)


@export.command("geojson")
@click.argument("outdir", type=_dir)
@_customers
@_personal
@scope_options
@pass_settings
def export_geojson_command(settings: Settings, outdir: Path, **options: Any) -> None:
    """One GeoJSON FeatureCollection per layer in OUTDIR."""
    from gridtopo.exports.geo import export_geojson

    _run_export(settings, outdir, options, export_geojson)


@export.command("graphml")
@click.argument("path", type=_file)
@scope_options
@pass_settings
def export_graphml_command(settings: Settings, path: Path, **options: Any) -> None:
    """The equipment graph (connectivity nodes, edges) as GraphML for networkx, Gephi, yEd."""
    from gridtopo.exports.graphml import export_graphml

    _run_export(settings, path, options, export_graphml)


@export.command("cim")
@click.argument("path", type=_file)
@_customers
@scope_options
@pass_settings
def export_cim_command(settings: Settings, path: Path, **options: Any) -> None:
    """IEC CIM (61970/61968, CIM100) RDF/XML of the distribution network."""
    from gridtopo.exports.cim import export_cim

    _run_export(settings, path, options, export_cim)


@export.command("cgmes")
@click.argument("path", type=click.Path(path_type=Path), metavar="FILE.zip|DIR")
@click.option("--version", "version", type=click.Choice(["2.4.15", "3.0"]), default="2.4.15",
              show_default=True, help="CGMES version of the instance files.")
@_load_model
@click.option("--authority", default="urn:gridtopo:distribution", show_default=True,
              metavar="URI", help="Model.modelingAuthoritySet of the headers.")
@scope_options
@pass_settings
def export_cgmes_command(settings: Settings, path: Path, **options: Any) -> None:
    """CGMES EQ, TP, SSH and SV instance files (a zip, or files in DIR) for pypowsybl,
    pandapower's CIM converter and other CGMES tools."""
    from gridtopo.exports.cgmes import export_cgmes

    _run_export(settings, path, options, export_cgmes)


@export.command("pandapower")
@click.argument("path", type=_file)
@_load_model
@scope_options
@pass_settings
def export_pandapower_command(settings: Settings, path: Path, **options: Any) -> None:
    """A pandapower network (JSON, pandapower.from_json) in the normal switching state."""
    from gridtopo.exports.pandapower import export_pandapower

    _run_export(settings, path, options, export_pandapower)


@click.group()
def snapshot() -> None:
    """Recorded states of the model: one per ingest run that changed it."""


@snapshot.command("list")
@json_option
@pass_settings
def snapshot_list(settings: Settings, as_json: bool) -> None:
    """Every snapshot: run id, date, rows added/changed/removed per table."""
    from gridtopo.db.read.asof import list_snapshots

    shots = [s.to_dict() for s in list_snapshots(settings.model_engine())]

    def human(items: list[dict[str, Any]]) -> None:
        click.echo(f"{'run':>6}  {'created (UTC)':<19}  {'added':>10} {'changed':>10} "
                   f"{'removed':>10}")
        for s in items:
            totals = [sum(c.get(k, 0) for c in s["counts"].values())
                      for k in ("added", "changed", "removed")]
            click.echo(f"{s['run_id']:>6}  {s['created_at'][:19].replace('T', ' '):<19}  "
                       + " ".join(f"{n:>10,}" for n in totals))

    emit(shots, as_json, human)


@snapshot.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Rows listed per kind of change (the JSON lists all).")
@json_option
@pass_settings
def snapshot_diff(settings: Settings, a: str, b: str, limit: int, as_json: bool) -> None:
    """What changed from the model as of A to the model as of B (run ids or dates)."""
    from gridtopo.exports.snapshot import diff

    result = diff(settings.model_engine(), a, b)

    def human(_: Any) -> None:
        click.echo(f"from run {result.run_a} to run {result.run_b}")
        for name, frame in result.parts.items():
            click.echo(f"  {name:<20} {frame.height:>10,}")
            for row in frame.head(limit).iter_rows():
                click.echo("      " + "  ".join("" if v is None else str(v) for v in row))
            if frame.height > limit:
                click.echo(f"      … {frame.height - limit:,} more (--limit, --json)")

    emit(result.to_dict() if as_json else None, as_json, human)
