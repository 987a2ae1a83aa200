"""``gridtopo generate``: synthetic exports with known truth (the only importer of the generator
outside tests and benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import command_progress, emit, json_option


@click.command()
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
            progress=progress,
        )
    result = manifest.to_dict()

    def human(m: dict[str, Any]) -> None:
        click.echo(f"wrote {outdir} in {m['elapsed_seconds']:.1f} s (seed {m['seed']})")
        for table, count in m["table_counts"].items():
            click.echo(f"  {table:<20} {count:>12,}")
        injected = sum(m["defect_counts"].values())
        click.echo(f"  defects injected: {injected:,} (truth in {outdir / 'truth'})")

    emit(result, as_json, human)
