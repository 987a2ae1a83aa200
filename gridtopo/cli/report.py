"""``gridtopo report …``: reports computed from the model's history.

Thin click wrappers over :mod:`gridtopo.quality.reliability`:

    gridtopo report reliability --by month --from 2026-01 --to 2026-06 --json
    gridtopo report reliability --by region --by feeder --kind unplanned --csv rel.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.outages.events import EVENT_KINDS
from gridtopo.quality import reliability as lib
from gridtopo.topology.index import load_index


@click.group()
def report() -> None:
    """Reports from the model's history (reliability indices)."""


@report.command("reliability")
@click.option("--by", "by", multiple=True, type=click.Choice(lib.DIMENSIONS),
              help="Rows per month, kind, region and/or feeder; repeat to combine "
                   "(default: totals only).")
@click.option("--from", "start", metavar="YYYY-MM",
              help="First month (Asia/Shanghai time); default the first event's.")
@click.option("--to", "end", metavar="YYYY-MM",
              help="Last month, inclusive; default the last event's.")
@click.option("--kind", type=click.Choice(EVENT_KINDS),
              help="Only planned (计划停电) or unplanned (故障停电) events; default both.")
@click.option("--min-minutes", type=click.FloatRange(min=0), default=lib.MIN_MINUTES,
              show_default=True,
              help="Interruptions this short or shorter are momentary (MAIFI), not sustained.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the rows to this CSV file (UTF-8 with BOM, for Excel).")
@click.option("--force", is_flag=True, help="Replace an existing --csv file.")
@click.option("--zh-headers", is_flag=True,
              help="--csv column names in English and Chinese (saifi 系统平均停电频率).")
@json_option
@pass_settings
def reliability(settings: Settings, by: tuple[str, ...], start: str | None, end: str | None,
                kind: str | None, min_minutes: float, csv_path: Path | None, force: bool,
                zh_headers: bool, as_json: bool) -> None:
    """SAIFI, SAIDI, CAIDI, ASAI (RS-1) and MAIFI of the closed outage events (IEEE 1366).

    Events count in the month of their start in Asia/Shanghai time. Totals use the stored
    customers interrupted and customer-minutes; rows per region or feeder recompute each
    event on today's network (network_changed says where that differs from what was stored).
    """
    engine = settings.model_engine()
    data = lib.reliability_report(engine, load_index(engine), by=by, start=start, end=end,
                                  kind=kind, min_minutes=min_minutes)
    if csv_path is not None:
        data["csv"] = {"path": str(csv_path),
                       "rows": lib.write_csv(data, csv_path, overwrite=force,
                                             chinese=zh_headers)}
    emit(data, as_json, _human)


def _ratio(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _line(label: str, r: dict[str, Any]) -> str:
    flag = "  network changed" if r["network_changed"] else ""
    return (f"{label:<28} {r['customers_served']:>9,} {r['events']:>6,} "
            f"{_ratio(r['saifi'], 4):>8} {_ratio(r['saidi'], 2):>9} "
            f"{_ratio(r['caidi'], 1):>7} "
            f"{_ratio(None if r['asai'] is None else r['asai'] * 100, 4):>9} "
            f"{r['momentary_events']:>5,} {_ratio(r['maifi'], 4):>7}{flag}")


def _human(data: dict[str, Any]) -> None:
    period = data["period"]
    click.echo(f"Reliability {period['from']} to {period['to']} ({period['timezone']}), "
               f"{data['kind']} events, sustained > {data['min_minutes']:g} min")
    click.echo(f"{'':<28} {'customers':>9} {'events':>6} {'SAIFI':>8} {'SAIDI':>9} "
               f"{'CAIDI':>7} {'RS-1 %':>9} {'mom.':>5} {'MAIFI':>7}")
    click.echo(_line("total", data["totals"]))
    if data["kind"] == "all":
        for kind, r in data["by_kind"].items():
            click.echo(_line(f"  {kind}", r))
    names = {"feeder": "feeder_id"}
    for r in data["rows"]:
        click.echo(_line(" ".join(str(r[names.get(d, d)]) for d in data["by"]), r))
    for e in data["network_changed_events"]:
        click.echo(f"event {e['id']} ({e['month']}): {e['customers_interrupted']:,} customers "
                   f"stored, {e['recomputed'] if e['recomputed'] is not None else '?'} on "
                   f"today's network{': ' + e['error'] if 'error' in e else ''}")
    if "csv" in data:
        click.echo(f"wrote {data['csv']['rows']:,} rows to {data['csv']['path']}")
