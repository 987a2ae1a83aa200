"""``gridtopo trace|outage|index|apikey|serve``: traces and the outage-impact service.

Thin click wrappers over :mod:`gridtopo.topology.queries`, :mod:`~gridtopo.topology.outages`,
:mod:`~gridtopo.topology.predict`, :mod:`~gridtopo.topology.traces` and :mod:`gridtopo.api`.
Every command takes ``--json``; unknown ids and malformed input exit 2 naming them.

    gridtopo outage impact SB-00000006 --json     # who would be out
    gridtopo outage impact SB-00000006 --close SB-00000089   # ... with a load transfer (转供)
    gridtopo outage status 0300000000017          # is this customer out, why, until when
    gridtopo outage declare SB-00000006 --kind planned --expected-end 2026-11-25T18:00
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from pathlib import Path
from typing import Any

import click

from gridtopo.cli_support import Settings, display_url, emit, json_option, pass_settings
from gridtopo.topology import outages as outage_lib
from gridtopo.topology import queries
from gridtopo.topology.index import index_dir, load_index

devices_argument = click.argument("devices", nargs=-1, required=True)


def switching_options(func: Any) -> Any:
    """DEVICES to open (optional when ``--close`` is given) and ``--close TIE`` (repeatable)."""
    func = click.option("--close", "close", multiple=True, metavar="TIE",
                        help="A normally-open tie the switching plan closes to pick up load "
                             "(转供); repeat for several.")(func)
    return click.argument("devices", nargs=-1)(func)


def _when(value: str | None) -> dt.datetime | None:
    """Parse an ISO date-time; naive values are UTC."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an ISO date-time such as "
                                 "2026-11-25T18:00 (UTC unless it has an offset)") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# --------------------------------------------------------------------------- trace


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
    from gridtopo.topology.traces import islands, loops

    G = build_graph(settings.model_engine())
    if not any(d["feeder_id"] == feeder_id for _, _, d in G.edges(data=True)):
        raise queries.UnknownIdError("feeder", [feeder_id])
    result = {"feeder_id": feeder_id, "loops": loops(G, feeder_id),
              "islands": islands(G, feeder_id)}
    emit(result, as_json, lambda r: click.echo(
        f"{feeder_id}: {len(r['loops'])} loop(s), {len(r['islands'])} island(s)"))


# --------------------------------------------------------------------------- outage


@click.group()
def outage() -> None:
    """Outage impact, events and trouble-call prediction."""


@outage.command("impact")
@switching_options
@click.option("--list", "list_customers", is_flag=True, help="List the customers affected.")
@click.option("--phones", is_flag=True,
              help="With --list: add names and phone numbers (personal data, unmasked).")
@json_option
@pass_settings
def outage_impact(settings: Settings, devices: tuple[str, ...], close: tuple[str, ...],
                  list_customers: bool, phones: bool, as_json: bool) -> None:
    """Transformers and customers that opening DEVICES (and closing each --close tie) would
    de-energize, compared with the normal switching state.

    DEVICES may lie on several feeders: the report has totals and one line per feeder, and
    one line per closed tie with what it picks up (those customers are not out).
    """
    engine = settings.model_engine()
    index = load_index(engine)
    result = queries.impact(index, *outage_lib.switching_lists(devices, close))
    data = result.to_dict()
    if list_customers:
        ids = queries.impact_customers(index, result)
        if phones:
            from gridtopo.topology.contacts import contacts

            people = contacts(engine, ids, reveal=True)
            data["customer_list"] = [{"customer_id": c, **people.get(c, {})} for c in ids]
        else:
            data["customer_list"] = [{"customer_id": c} for c in ids]

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
@json_option
@pass_settings
def outage_declare(settings: Settings, devices: tuple[str, ...], close: tuple[str, ...],
                   kind: str, start: str | None, expected_end: str | None, reason: str | None,
                   as_json: bool) -> None:
    """Record an outage event opening DEVICES and closing each --close tie (a switching plan's
    load transfer: the customers it picks up are not counted as out)."""
    engine = settings.model_engine()
    event = outage_lib.declare(engine, load_index(engine), devices, close=close, kind=kind,
                               started_at=_when(start), expected_end=_when(expected_end),
                               reason=reason, created_by=getpass.getuser())
    emit(event, as_json, lambda e: click.echo(
        f"event {e['id']} ({e['kind']}, {_switching(e)}) declared: "
        f"{e['customers_interrupted']:,} customers, {e['impact']['transformers']:,} "
        "transformers"
        + "".join(f"; {p['customers']:,} customers picked up through {p['tie']}"
                  for p in e["impact"]["picked_up"])
        + (f"; overlaps event(s) {', '.join(map(str, e['overlaps']))}" if e["overlaps"] else "")
    ))


@outage.command("close")
@click.argument("event_id", type=int)
@click.option("--end", help="ISO date-time the supply came back; default now.")
@json_option
@pass_settings
def outage_close(settings: Settings, event_id: int, end: str | None, as_json: bool) -> None:
    """Close EVENT_ID, keeping it as history with customers interrupted and minutes."""
    event = outage_lib.close(settings.model_engine(), event_id, ended_at=_when(end))
    emit(event, as_json, lambda e: click.echo(
        f"event {e['id']} closed at {e['ended_at']}: {e['customers_interrupted']:,} customers "
        f"interrupted, {e['customer_minutes']:,.0f} customer-minutes"))


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
    result = outage_lib.customer_status(index, outage_lib.OutageState.load(engine, index),
                                        customer_id)

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
    from gridtopo.topology.predict import predict_outage, read_calls

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


# --------------------------------------------------------------------------- index


@click.group("index")
def index_group() -> None:
    """The query index of the outage service (next to the database)."""


@index_group.command("build")
@json_option
@pass_settings
def index_build(settings: Settings, as_json: bool) -> None:
    """Build (or rebuild) the index of the model: run after every ingest."""
    engine = settings.model_engine()
    index = load_index(engine, rebuild=True)
    result = {"path": str(index_dir(engine)), **index.meta}
    emit(result, as_json, lambda r: click.echo(
        f"index of {display_url(engine)} at {r['path']}: {r['feeders']:,} feeders, "
        f"{r['transformers']:,} transformers, {r['customers']:,} customers"))


# --------------------------------------------------------------------------- API keys


@click.group()
def apikey() -> None:
    """HTTP API keys: shown once at creation, stored hashed."""


@apikey.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="outage:read, personal:read, outage:write or admin (repeat for several).")
@click.option("--expires", help="ISO date-time after which the key is refused.")
@json_option
@pass_settings
def apikey_create(settings: Settings, name: str, scopes: tuple[str, ...], expires: str | None,
                  as_json: bool) -> None:
    """Create key NAME; the key is printed once and cannot be shown again."""
    from gridtopo.api.keys import create_key

    key, info = create_key(settings.model_engine(), name, list(scopes),
                           expires_at=_when(expires), created_by=getpass.getuser())
    emit({"key": key, **info}, as_json, lambda r: click.echo(
        f"{r['key']}\n(key {name!r}, scopes {', '.join(r['scopes'])}: store it now, it is not "
        "shown again)"))


@apikey.command("list")
@json_option
@pass_settings
def apikey_list(settings: Settings, as_json: bool) -> None:
    """Keys with their prefix, scopes, state and last use (never the key itself)."""
    from gridtopo.api.keys import list_keys

    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            state = "revoked" if r["revoked_at"] else f"expires {r['expires_at'] or 'never'}"
            click.echo(f"{r['name']:<20} {r['key_prefix']}…  {','.join(r['scopes']):<40} {state}"
                       f"  last used {r['last_used_at'] or 'never'}")

    emit(list_keys(settings.model_engine()), as_json, human)


@apikey.command("revoke")
@click.argument("name_or_prefix")
@json_option
@pass_settings
def apikey_revoke(settings: Settings, name_or_prefix: str, as_json: bool) -> None:
    """Revoke a key by name or prefix; requests with it get 401 from then on."""
    from gridtopo.api.keys import revoke_key

    emit(revoke_key(settings.model_engine(), name_or_prefix), as_json,
         lambda r: click.echo(f"revoked {r['name']} at {r['revoked_at']}"))


# --------------------------------------------------------------------------- serve


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes; they share the memory-mapped index. On a small host one "
                   "is fastest (uvicorn's multi-worker mode was 10x slower on 2 cores).")
@click.option("--index", "index_path", type=click.Path(exists=True, file_okay=False,
                                                       path_type=Path),
              help="Serve this prebuilt index directory as is (e.g. the model's, while the "
                   "database holds only keys and events); default: the database's own.")
@pass_settings
def serve(settings: Settings, host: str, port: int, workers: int, index_path: Path | None
          ) -> None:
    """Run the HTTP API (OpenAPI at /docs) with uvicorn."""
    import uvicorn

    from gridtopo.topology.index import read_index

    engine = settings.model_engine()
    if index_path is None:
        load_index(engine)  # build once here, not in every worker
    else:
        read_index(index_path)  # fail here, not in every worker
        os.environ["GRIDTOPO_INDEX"] = str(index_path.resolve())
    os.environ["GRIDTOPO_DB"] = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    uvicorn.run("gridtopo.api.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False,
                timeout_worker_healthcheck=120)  # a worker imports for seconds on a busy host
