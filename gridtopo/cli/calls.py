"""``gridtopo calls …``: take trouble calls and meter events from files
(:mod:`gridtopo.outages.calls`, :mod:`gridtopo.outages.meters`).

    gridtopo calls add calls.csv          # CSV or JSON lines; answers per call
    gridtopo calls meter-events ami.jsonl # last gasps, power-ons, devices closed
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.outages.calls import read_calls_file, take_calls
from gridtopo.outages.meters import read_events_file, record_events_file
from gridtopo.outages.prediction import update_predictions
from gridtopo.topology.index import load_index

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def calls() -> None:
    """Trouble calls and AMI meter events."""


@calls.command("add")
@click.argument("file", type=FILE)
@json_option
@pass_settings
def calls_add(settings: Settings, file: Path, as_json: bool) -> None:
    """Take the calls of FILE (CSV with a header, or JSON lines): each stored once by
    call_id and answered; then the predictions are updated."""
    engine = settings.model_engine()
    result = take_calls(engine, load_index(engine), read_calls_file(file))

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['received']} calls: {r['created']} new, {r['repeated']} already "
                   f"taken, {len(r['conflicts'])} conflicting; "
                   + ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())))
        for c in r["conflicts"]:
            click.echo(f"  conflict: {c['detail']}")

    emit(result, as_json, human)


@calls.command("meter-events")
@click.argument("file", type=FILE)
@json_option
@pass_settings
def calls_meter_events(settings: Settings, file: Path, as_json: bool) -> None:
    """Store the meter events of FILE (JSON lines: meter_id, kind power_off|power_on, at; or
    device_id, kind closed, at); then the predictions are updated."""
    engine = settings.model_engine()
    index = load_index(engine)
    result = record_events_file(engine, index, read_events_file(file))
    result["predictions"] = update_predictions(engine, index)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['received']} events: {r['stored']} stored, {r['duplicates']} "
                   f"duplicates, {len(r['unknown_meters'])} unknown meters, "
                   f"{len(r['unknown_devices'])} unknown devices")

    emit(result, as_json, human)
