"""``gridtopo index|apikey|serve``: the query index, API keys and the HTTP API."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import click

from gridtopo.api.limits import LIMIT_ENV, PERSONAL_PER_MINUTE
from gridtopo.cli.output import emit, iso_datetime, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.db.engine import display_url
from gridtopo.topology.index import index_dir, load_index


@click.group("index")
def index_group() -> None:
    """The query index of the outage service (next to the database)."""


@index_group.command("build")
@json_option
@pass_settings
def index_build(settings: Settings, as_json: bool) -> None:
    """Build (or rebuild) the index of the model: run after every ingest (a running server
    also builds it by itself within seconds of an ingest)."""
    from gridtopo.topology.index import index_lock

    engine = settings.model_engine()
    with index_lock(engine):  # not while a server's worker builds or reads it
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
                           expires_at=iso_datetime(expires), created_by=getpass.getuser())
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



@apikey.command("access-log")
@click.option("--key", "key_name", help="Only the reads of the key with this name.")
@click.option("--since", help="Only reads at or after this ISO date-time (UTC unless offset).")
@click.option("--customer", "customer_id", help="Only reads that revealed this customer.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many reads.")
@json_option
@pass_settings
def apikey_access_log(settings: Settings, key_name: str | None, since: str | None,
                      customer_id: str | None, limit: int | None, as_json: bool) -> None:
    """Who read customers' personal data through the API: one line per answer that listed
    names, phones and addresses unmasked (key, time, route, customers), newest first;
    --json adds the customer ids."""
    from gridtopo.api.access_log import access_log

    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            click.echo(f"{r['read_at'].isoformat(timespec='seconds')}  {r['key_name']:<20} "
                       f"{r['customers']:>5} customers  {r['route']}  {r['path']}")
        if not rows:
            click.echo("no personal-data reads logged")

    emit(access_log(settings.model_engine(), key_name=key_name, since=iso_datetime(since),
                    customer_id=customer_id, limit=limit), as_json, human)


# --------------------------------------------------------------------------- serve


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes; they share the memory-mapped index and each follows the "
                   "model. On a 2-core host one is about as fast as two.")
@click.option("--index", "index_path", type=click.Path(exists=True, file_okay=False,
                                                       path_type=Path),
              help="Serve this prebuilt index directory as is, never switching models (e.g. "
                   "the model's, while the database holds only keys and events); default: "
                   "the database's own, followed to every new ingest run.")
@click.option("--personal-limit", type=click.IntRange(min=1), envvar=LIMIT_ENV,
              default=PERSONAL_PER_MINUTE, show_default=True,
              help=f"Customers whose personal data one API key may read per minute "
                   f"(${LIMIT_ENV}).")
@pass_settings
def serve(settings: Settings, host: str, port: int, workers: int, index_path: Path | None,
          personal_limit: int) -> None:
    """Run the HTTP API (OpenAPI at /docs) with uvicorn."""
    from gridtopo.api import server
    from gridtopo.topology.index import index_lock, read_index

    engine = settings.model_engine()
    if index_path is None:
        with index_lock(engine):
            load_index(engine)  # build once here, not in every worker
    else:
        read_index(index_path)  # fail here, not in every worker
        os.environ["GRIDTOPO_INDEX"] = str(index_path.resolve())
    os.environ["GRIDTOPO_DB"] = engine.url.render_as_string(hide_password=False)
    os.environ[LIMIT_ENV] = str(personal_limit)
    engine.dispose()
    server.run(host, port, workers)
