"""``gridtopo outage …``: outage impact, events and trouble-call prediction.

Thin click wrappers over :mod:`~gridtopo.outages.report`, :mod:`~gridtopo.outages.events`,
:mod:`~gridtopo.outages.state` and :mod:`~gridtopo.outages.predict`.
Every command takes ``--json``; unknown ids and malformed input exit 2 naming them.

    gridtopo outage impact SB-00000006 --json     # who would be out
    gridtopo outage impact SB-00000006 --close SB-00000089   # ... with a load transfer (转供)
    gridtopo outage status 0300000000017          # is this customer out, why, until when
    gridtopo outage declare SB-00000006 --kind planned --expected-end 2026-11-25T18:00"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import emit, iso_datetime, json_option, notice_rules_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.outages import events as outage_lib
from gridtopo.outages.notices import NoticeRules
from gridtopo.outages.report import CustomerPage, impact_report
from gridtopo.outages.state import OutageState, customer_status
from gridtopo.topology.index import load_index


def switching_options(func: Any) -> Any:
    """DEVICES to open (optional when ``--close`` is given) and ``--close TIE`` (repeatable)."""
    func = click.option("--close", "close", multiple=True, metavar="TIE",
                        help="A normally-open tie the switching plan closes to pick up load "
                             "(转供); repeat for several.")(func)
    return click.argument("devices", nargs=-1)(func)


@click.group()
def outage() -> None:
    """Outage impact, events and trouble-call prediction."""


@outage.command("impact")
@switching_options
@click.option("--list", "list_customers", is_flag=True, help="List the customers affected.")
@click.option("--phones", is_flag=True,
              help="With --list: add names, phone numbers and addresses (masked unless "
                   "--personal).")
@click.option("--personal", is_flag=True,
              help="With --phones: personal data unmasked.")
@json_option
@pass_settings
def outage_impact(settings: Settings, devices: tuple[str, ...], close: tuple[str, ...],
                  list_customers: bool, phones: bool, personal: bool, as_json: bool) -> None:
    """Transformers and customers that opening DEVICES (and closing each --close tie) would
    de-energize, compared with the normal switching state.

    DEVICES may lie on several feeders: the report has totals and one line per feeder, and
    one line per closed tie with what it picks up (those customers are not out). The report
    is the API's (POST /v1/impact), with every customer instead of a page.
    """
    engine = settings.model_engine()
    page = CustomerPage(contacts=phones, reveal=personal) if list_customers else None
    data = impact_report(engine, load_index(engine), devices, close, customers=page)
    if page is not None:
        data["customer_list"] = data["customer_list"]["items"]

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{_switching(r)}: {r['transformers']:,} transformers, "
                   f"{r['customers']:,} customers")
        for feeder, f in sorted(r["by_feeder"].items()):
            click.echo(f"  {feeder or '(no feeder)':<14} {f['transformers']:>8,} transformers "
                       f"{f['customers']:>10,} customers  devices {', '.join(f['devices'])}")
        for p in r["picked_up"]:
            click.echo(f"  picked up through {p['tie']} from {p['via_feeder'] or '(no feeder)'}:"
                       f" {p['transformers']:,} transformers, {p['customers']:,} customers")
        for c in r.get("customer_list", []):
            click.echo("  " + "  ".join(str(v) for v in c.values() if v is not None))

    emit(data, as_json, human)


def _switching(r: dict[str, Any]) -> str:
    """``open A, B; close T`` for a person."""
    closed = f"; close {', '.join(r['closed'])}" if r["closed"] else ""
    return f"open {', '.join(r['devices']) or '-'}{closed}"


@outage.command("declare")
@switching_options
@click.option("--kind", type=click.Choice(outage_lib.EVENT_KINDS), default="unplanned",
              show_default=True)
@click.option("--start", help="ISO date-time (UTC unless an offset is given); default now.")
@click.option("--expected-end", help="ISO date-time of the expected restoration.")
@click.option("--reason", help="Why (shown to customers' channels).")
@notice_rules_option
@json_option
@pass_settings
def outage_declare(settings: Settings, devices: tuple[str, ...], close: tuple[str, ...],
                   kind: str, start: str | None, expected_end: str | None, reason: str | None,
                   notice_rules: NoticeRules | None, as_json: bool) -> None:
    """Record an outage event opening DEVICES and closing each --close tie (a switching plan's
    load transfer: the customers it picks up are not counted as out), with its customers'
    notices (planned notices and reminders ahead, or "acknowledged" at once)."""
    engine = settings.model_engine()
    event = outage_lib.declare(engine, load_index(engine), devices, close=close, kind=kind,
                               started_at=iso_datetime(start),
                               expected_end=iso_datetime(expected_end),
                               reason=reason, created_by=getpass.getuser(),
                               notice_rules=notice_rules)
    emit(event, as_json, lambda e: click.echo(
        f"event {e['id']} ({e['kind']}, {_switching(e)}) declared: "
        f"{e['customers_interrupted']:,} customers, {e['impact']['transformers']:,} "
        "transformers"
        + "".join(f"; {p['customers']:,} customers picked up through {p['tie']}"
                  for p in e["impact"]["picked_up"])
        + (f"; overlaps event(s) {', '.join(map(str, e['overlaps']))}" if e["overlaps"] else "")
        + _notices(e)))


def _notices(e: dict[str, Any]) -> str:
    """``; notices: 950 acknowledged, 12 no_contact`` for a person."""
    counts = {k: v for k, v in (e.get("notices") or {}).items() if v}
    return ("; notices: " + ", ".join(f"{v:,} {k}" for k, v in sorted(counts.items()))
            if counts else "")


@outage.command("close")
@click.argument("event_id", type=int)
@click.option("--end", help="ISO date-time the supply came back; default now.")
@notice_rules_option
@json_option
@pass_settings
def outage_close(settings: Settings, event_id: int, end: str | None,
                 notice_rules: NoticeRules | None, as_json: bool) -> None:
    """Close EVENT_ID, keeping it as history with customers interrupted and minutes, and tell
    the customers who are back in supply. A planned event closed before its start is called
    off."""
    engine = settings.model_engine()
    event = outage_lib.close(engine, event_id, ended_at=iso_datetime(end),
                             index=load_index(engine), notice_rules=notice_rules)
    emit(event, as_json, lambda e: click.echo(
        f"event {e['id']} closed at {e['ended_at']}: {e['customers_interrupted']:,} customers "
        f"interrupted, {e['customer_minutes']:,.0f} customer-minutes" + _notices(e)))


@outage.command("etr")
@click.argument("event_id", type=int)
@click.argument("expected_end")
@notice_rules_option
@json_option
@pass_settings
def outage_etr(settings: Settings, event_id: int, expected_end: str,
               notice_rules: NoticeRules | None, as_json: bool) -> None:
    """Set or move the expected restoration of EVENT_ID to EXPECTED_END (ISO date-time); the
    customers whose restoration moves by more than the threshold are told."""
    engine = settings.model_engine()
    end = iso_datetime(expected_end)
    assert end is not None
    event = outage_lib.set_etr(engine, load_index(engine), event_id, end,
                               notice_rules=notice_rules)
    emit(event, as_json, lambda e: click.echo(
        f"event {e['id']} expected end {e['expected_end']}" + _notices(e)))


@outage.command("list")
@click.option("--status", type=click.Choice(["active", "closed"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@json_option
@pass_settings
def outage_list(settings: Settings, status: str | None, limit: int, offset: int,
                as_json: bool) -> None:
    """Outage events, newest first."""
    page = outage_lib.list_events(settings.model_engine(), status=status, limit=limit,
                                  offset=offset)

    def human(p: dict[str, Any]) -> None:
        click.echo(f"{p['total']} event(s)")
        for e in p["events"]:
            closed = f"  close {', '.join(e['closed'])}" if e["closed"] else ""
            click.echo(f"  {e['id']:>5} {e['status']:<7} {e['kind']:<10} {e['started_at']} "
                       f"{e['customers_interrupted'] or 0:>9,} customers  "
                       f"{', '.join(e['devices'][:3])}{' ...' * (len(e['devices']) > 3)}"
                       f"{closed}")

    emit(page, as_json, human)


@outage.command("status")
@click.argument("customer_id")
@json_option
@pass_settings
def outage_status(settings: Settings, customer_id: str, as_json: bool) -> None:
    """Is CUSTOMER_ID out of supply now, because of which event, until when?"""
    engine = settings.model_engine()
    index = load_index(engine)
    result = customer_status(index, OutageState.load(engine, index), customer_id)

    def human(r: dict[str, Any]) -> None:
        state = {True: "OUT", False: "supplied", None: "unknown"}[r["out"]]
        click.echo(f"{customer_id}: {state}" + (f" ({r['reason']})" if r["reason"] else ""))
        for e in r["events"]:
            click.echo(f"  event {e['id']} {e['kind']}: {e['reason'] or ''} expected end "
                       f"{e['expected_end'] or 'unknown'}")
        for e in r["upcoming"]:
            click.echo(f"  upcoming event {e['id']} from {e['started_at']}")
        if r["transfer"]:
            click.echo(f"  fed through tie {r['transfer']['tie']} (load transfer of event(s) "
                       f"{', '.join(map(str, r['transfer']['events']))})")

    emit(result, as_json, human)


@outage.command("predict")
@click.argument("calls", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@pass_settings
def outage_predict(settings: Settings, calls: Path, as_json: bool) -> None:
    """Most likely opened device(s) from a CSV of trouble calls (a customer_id column)."""
    from gridtopo.outages.predict import predict_outage, read_calls

    ids = read_calls(calls)
    result = predict_outage(load_index(settings.model_engine()), ids)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['calls']} calls from {r['customers']} customers "
                   f"({len(r['unknown_customers'])} unknown, "
                   f"{len(r['unlocated_customers'])} without a supplied transformer)")
        for p in r["predictions"]:
            click.echo(f"  {p['feeder_id']}: {p['device']} ({p['kind']}) explains "
                       f"{p['calls']} calls, {p['customers_below']:,} customers below")

    emit(result, as_json, human)
