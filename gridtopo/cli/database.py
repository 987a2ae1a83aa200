"""``gridtopo init|db|info``: create, migrate and describe the database."""

from __future__ import annotations

from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.db import migrate
from gridtopo.db.engine import display_url as _display_url
from gridtopo.db.runlock import READ_WAIT_MS, reap_interrupted
from gridtopo.db.status import database_status


@click.command()
@json_option
@pass_settings
def init(settings: Settings, as_json: bool) -> None:
    """Create the database (if missing) and bring its schema to the current revision."""
    engine = settings.engine(create=True)
    before = migrate.current_revision(engine)
    after = migrate.upgrade(engine)
    result = {
        "database": _display_url(engine),
        "backend": engine.dialect.name,
        "revision_before": before,
        "revision": after,
    }
    emit(
        result,
        as_json,
        lambda r: click.echo(
            f"{r['database']}: schema at revision {r['revision']}"
            + (" (created)" if r["revision_before"] is None else " (already current)"
               if r["revision_before"] == r["revision"] else f" (from {r['revision_before']})")
        ),
    )


@click.group()
def db() -> None:
    """Schema migrations (Alembic) of the chosen database."""


@db.command("upgrade")
@click.argument("revision", default="head")
@json_option
@pass_settings
def db_upgrade(settings: Settings, revision: str, as_json: bool) -> None:
    """Migrate the schema up to REVISION (default: head)."""
    engine = settings.engine(create=True)
    before = migrate.current_revision(engine)
    after = migrate.upgrade(engine, revision)
    emit(
        {"database": _display_url(engine), "revision_before": before, "revision": after},
        as_json,
        lambda r: click.echo(f"{r['database']}: {r['revision_before']} -> {r['revision']}"),
    )


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_settings
def db_downgrade(settings: Settings, revision: str, yes: bool, as_json: bool) -> None:
    """Migrate the schema down to REVISION ("base" drops every gridtopo table)."""
    engine = settings.engine()
    if not yes and not click.confirm(
        f"Downgrade {_display_url(engine)} to {revision}? Data in dropped tables is lost",
        err=True,
    ):
        raise click.Abort()
    before = migrate.current_revision(engine)
    after = migrate.downgrade(engine, revision)
    emit(
        {"database": _display_url(engine), "revision_before": before, "revision": after},
        as_json,
        lambda r: click.echo(f"{r['database']}: {r['revision_before']} -> {r['revision']}"),
    )


@db.command("current")
@json_option
@pass_settings
def db_current(settings: Settings, as_json: bool) -> None:
    """Show the schema revision of the database and the newest one gridtopo knows."""
    engine = settings.engine()
    result = {
        "database": _display_url(engine),
        "revision": migrate.current_revision(engine),
        "head": migrate.head_revision(),
    }
    emit(
        result,
        as_json,
        lambda r: click.echo(f"{r['database']}: revision {r['revision']} (head {r['head']})"),
    )


@click.command()
@json_option
@pass_settings
def info(settings: Settings, as_json: bool) -> None:
    """Summarise the database: backend, schema, rows per table, last ingest run."""
    engine = settings.model_engine(lock_wait_ms=READ_WAIT_MS)
    reap_interrupted(engine)
    status = database_status(engine)
    status["database"] = _display_url(engine)

    def human(s: dict[str, Any]) -> None:
        click.echo(f"{s['database']} ({s['backend']} {s['spatial']}), schema {s['revision']}")
        width = max(len(name) for name in s["tables"])
        for name, count in s["tables"].items():
            click.echo(f"  {name:<{width}}  {count:>12,}")
        run = s["last_ingest"]
        click.echo(
            "  last ingest: "
            + (f"run {run['id']} {run['status']} at {run['started_at']}" if run else "none yet")
        )

    emit(status, as_json, human)
