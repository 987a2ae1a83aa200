"""``gridtopo export …``: the reconciled model in the formats planners' tools read."""

from __future__ import annotations

from pathlib import Path

import click

from gridtopo.cli_support import Settings, command_progress, emit, json_option, pass_settings


@click.group()
def export() -> None:
    """Export the reconciled model."""


@export.command("csv")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--personal", is_flag=True, help="Include customers' names, addresses, phones.")
@click.option("--overwrite", is_flag=True, help="Replace files of an earlier export.")
@json_option
@pass_settings
def export_csv_command(
    settings: Settings, outdir: Path, personal: bool, overwrite: bool, as_json: bool
) -> None:
    """Write the model as CSV into OUTDIR, with customer_links.csv for the whole chain."""
    from gridtopo.exports.csv import export_csv

    engine = settings.model_engine()
    with command_progress(as_json) as progress:
        counts = export_csv(engine, outdir, personal=personal, overwrite=overwrite,
                            progress=progress.update if progress else None)
    emit({"outdir": str(outdir), "files": counts}, as_json, lambda r: [
        click.echo(f"  {name:<24} {n:>12,}") for name, n in r["files"].items()
    ])
