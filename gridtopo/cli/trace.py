"""``gridtopo trace …``: follow the supply path up or down, isolate a fault, find restoring ties,
check a feeder for loops and islands."""

from __future__ import annotations

from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.topology import queries
from gridtopo.topology.index import load_index

devices_argument = click.argument("devices", nargs=-1, required=True)


@click.group()
def trace() -> None:
    """Follow the supply path up or down, isolate a fault, find restoring ties."""


@trace.command("upstream")
@click.argument("entity_id")
@json_option
@pass_settings
def trace_upstream(settings: Settings, entity_id: str, as_json: bool) -> None:
    """Path from a customer, transformer or node up to its feeder and station."""
    result = queries.upstream(load_index(settings.model_engine()), entity_id)

    def human(r: dict[str, Any]) -> None:
        if not r["energized"]:
            click.echo(f"{r['id']} ({r['type']}, node {r['node']}): not energized in the normal "
                       "switching state, no path to a source")
            return
        click.echo(f"{r['id']} ({r['type']}) <- node {r['node']}")
        for p in r["path"]:
            click.echo(f"  <- {p['edge_id']:<14} {p['kind']}{'  (protective)' * p['protective']}")
        click.echo(f"  feeder {r['feeder_id']}, station {r['station_id']}")
        if len(r["sources"]) > 1:
            click.echo("  fed in parallel through: " + ", ".join(
                f"{s['edge_id'] or s['supply_node']} ({s['feeder_id']}, station "
                f"{s['station_id']})" for s in r["sources"]))

    emit(result, as_json, human)


@trace.command("downstream")
@click.argument("device")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Ids listed per kind (counts are always complete).")
@json_option
@pass_settings
def trace_downstream(settings: Settings, device: str, limit: int, as_json: bool) -> None:
    """Edges, transformers and customers below a device."""
    result = queries.downstream(load_index(settings.model_engine()), device, limit=limit)
    emit(result, as_json, lambda r: click.echo(
        f"{r['device']} ({r['kind']}): {r['edges']:,} edges, {r['transformers']:,} "
        f"transformers, {r['customers']:,} customers below\n"
        f"  transformers: {', '.join(r['transformer_ids']) or '-'}"))


@trace.command("isolate")
@devices_argument
@json_option
@pass_settings
def trace_isolate(settings: Settings, devices: tuple[str, ...], as_json: bool) -> None:
    """Nearest switching devices that cut off the faulted DEVICES' section."""
    from gridtopo.topology.graph import build_graph
    from gridtopo.topology.traces import isolation

    result = isolation(build_graph(settings.model_engine()), devices)
    emit(result, as_json, lambda r: click.echo(
        f"open upstream: {', '.join(r['upstream']) or '-'}; downstream: "
        f"{', '.join(r['downstream']) or '-'} ({r['section_nodes']} nodes, "
        f"{len(r['section_transformers'])} transformers in the section)"))


@trace.command("restore")
@devices_argument
@json_option
@pass_settings
def trace_restore(settings: Settings, devices: tuple[str, ...], as_json: bool) -> None:
    """Normally-open ties that could pick up what opening DEVICES leaves dead."""
    from gridtopo.topology.graph import build_graph
    from gridtopo.topology.traces import restoration

    result = restoration(build_graph(settings.model_engine()), devices)

    def human(ties: list[dict[str, Any]]) -> None:
        for r in ties:
            click.echo(f"close {r['tie']} (from {r['via_feeder']}): {len(r['transformers'])} "
                       f"transformers, {r['nodes']} nodes")
        if not ties:
            click.echo("no tie can restore supply")

    emit(result, as_json, human)


@trace.command("check")
@click.argument("feeder_id")
@json_option
@pass_settings
def trace_check(settings: Settings, feeder_id: str, as_json: bool) -> None:
    """Loops (cycles of closed edges) and islands (unsupplied parts) of a feeder."""
    from gridtopo.topology.graph import build_graph
    from gridtopo.topology.traces import check_feeder

    result = check_feeder(build_graph(settings.model_engine()), feeder_id)
    emit(result, as_json, lambda r: click.echo(
        f"{feeder_id}: {len(r['loops'])} loop(s), {len(r['islands'])} island(s)"))
