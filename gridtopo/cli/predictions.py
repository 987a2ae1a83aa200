"""``gridtopo predictions …``: predicted outages and the dispatcher's decisions
(:mod:`gridtopo.outages.prediction`).

    gridtopo predictions list                 # open predictions
    gridtopo predictions update               # regroup new calls and meter events now
    gridtopo predictions confirm 7 --expected-end 2026-12-07T18:00
    gridtopo predictions merge 8 --into 7
    gridtopo predictions retarget 7 SB-00000011
    gridtopo predictions cancel 9 --note "customer's own fuse"
"""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

import click

from gridtopo.cli.output import emit, iso_datetime, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.outages import prediction as lib
from gridtopo.topology.index import load_index

STATUSES = ("open", "confirmed", "merged", "cancelled", "restored", "all")


def _by() -> str:
    return f"cli:{getpass.getuser()}"


def _show(p: dict[str, Any]) -> None:
    click.echo(f"prediction {p['id']} {p['status']}: {p['device']} ({p['device_kind']}) on "
               f"{p['feeder_id']}, {p['calls']} calls, {p['meter_events']} last gasps, "
               f"{p['customers_below']} customers below, since {p['started_at']}"
               + (f", event {p['event_id']}" if p["event_id"] else "")
               + (f", merged into {p['merged_into']}" if p["merged_into"] else ""))


@click.group()
def predictions() -> None:
    """Predicted outages from calls and last gasps: list, update, confirm, merge, re-target,
    cancel."""


@predictions.command("list")
@click.option("--status", type=click.Choice(STATUSES), default="open", show_default=True)
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_settings
def predictions_list(settings: Settings, status: str, limit: int, as_json: bool) -> None:
    """Predictions, newest first."""
    result = lib.list_predictions(settings.model_engine(),
                                  status=None if status == "all" else status, limit=limit)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['total']} prediction(s)")
        for p in r["items"]:
            _show(p)

    emit(result, as_json, human)


@predictions.command("update")
@json_option
@pass_settings
def predictions_update(settings: Settings, as_json: bool) -> None:
    """Regroup the calls and meter events not yet taken into account."""
    engine = settings.model_engine()
    result = lib.update_predictions(engine, load_index(engine))
    emit(result, as_json, lambda r: click.echo(", ".join(f"{k} {v}" for k, v in r.items())))


@predictions.command("confirm")
@click.argument("prediction_id", type=int)
@click.option("--expected-end", help="ETR, ISO 8601.")
@click.option("--reason")
@json_option
@pass_settings
def predictions_confirm(settings: Settings, prediction_id: int, expected_end: str | None,
                        reason: str | None, as_json: bool) -> None:
    """Confirm: declare an unplanned outage event opening the predicted device."""
    engine = settings.model_engine()
    end: dt.datetime | None = iso_datetime(expected_end)
    result = lib.confirm(engine, load_index(engine), prediction_id, by=_by(),
                         expected_end=end, reason=reason)

    def show(r: dict[str, Any]) -> None:
        _show(r)
        click.echo(f"  outage event {r['event']['id']}: "
                   f"{r['event']['customers_interrupted']} customers")
    emit(result, as_json, show)


@predictions.command("merge")
@click.argument("prediction_id", type=int)
@click.option("--into", type=int, required=True, help="The prediction to merge into.")
@json_option
@pass_settings
def predictions_merge(settings: Settings, prediction_id: int, into: int, as_json: bool) -> None:
    """Merge PREDICTION_ID into --into (the lowest protective device above both)."""
    engine = settings.model_engine()
    emit(lib.merge(engine, load_index(engine), prediction_id, into, by=_by()), as_json, _show)


@predictions.command("retarget")
@click.argument("prediction_id", type=int)
@click.argument("device")
@json_option
@pass_settings
def predictions_retarget(settings: Settings, prediction_id: int, device: str,
                         as_json: bool) -> None:
    """Point PREDICTION_ID at DEVICE; it keeps it as signals arrive."""
    engine = settings.model_engine()
    emit(lib.retarget(engine, load_index(engine), prediction_id, device, by=_by()), as_json,
         _show)


@predictions.command("cancel")
@click.argument("prediction_id", type=int)
@click.option("--note")
@json_option
@pass_settings
def predictions_cancel(settings: Settings, prediction_id: int, note: str | None,
                       as_json: bool) -> None:
    """Cancel PREDICTION_ID: no outage."""
    emit(lib.cancel(settings.model_engine(), prediction_id, by=_by(), note=note), as_json,
         _show)
