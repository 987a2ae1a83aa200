"""``gridtopo switching …``: record field switching changes and see which are in force.

Thin click wrappers over :func:`gridtopo.topology.switching.apply_switching` and
:mod:`gridtopo.db.switching` (which also states which wins against the next export).

    gridtopo switching apply ops.csv --by "dispatcher Li"   # edge_id, normal_open, at, note
    gridtopo switching apply ops.csv --pin                  # exports do not override them
    gridtopo switching list --status active --json
    gridtopo switching unpin 12"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.db.models import SWITCHING_STATUSES
from gridtopo.db.switching import list_switching, set_pinned
from gridtopo.ingest.switching import read_switching_csv
from gridtopo.topology.switching import apply_switching


@click.group()
def switching() -> None:
    """Live switching state: changes done in the field between two exports."""


@switching.command("apply")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--by", help="Who recorded the changes (default: the login name).")
@click.option("--pin", is_flag=True,
              help="Keep these changes against every later export until unpinned.")
@json_option
@pass_settings
def switching_apply(settings: Settings, file: Path, by: str | None, pin: bool,
                    as_json: bool) -> None:
    """Apply the switching changes of FILE (CSV: edge_id, normal_open and/or in_service,
    optional at and note) to the model and its query index, all or nothing.

    An unknown device, normal_open on a line or cable, or an unreadable value exits 2
    naming the file, line and device, and nothing of the file is applied."""
    engine = settings.model_engine()
    rows = read_switching_csv(file)
    done = apply_switching(engine, rows, origin=str(file), by=by or getpass.getuser(),
                           pin=pin)
    emit(done, as_json, lambda d: click.echo(
        f"{len(d['changes'])} switching change(s) recorded as run {d['run_id']} (switching "
        f"version {d['switching_version']}): {d['edges_changed']} device(s) changed state, "
        f"index {d['index']} in {d['seconds']['total']:.2f} s"
        + "".join(f"\n  {e}: normal_open={s['normal_open']} in_service={s['in_service']}"
                  for e, s in d["edges"].items())))


@switching.command("list")
@click.option("--status", type=click.Choice(SWITCHING_STATUSES))
@click.option("--device", help="Only the changes of this device.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@json_option
@pass_settings
def switching_list(settings: Settings, status: str | None, device: str | None, limit: int,
                   as_json: bool) -> None:
    """Recorded switching changes, newest first: who, when, why, and whether still in force
    (active), confirmed or overridden by an export, or replaced by a later change."""
    changes = list_switching(settings.model_engine(), status=status, device=device,
                             limit=limit)

    def human(found: list[dict[str, Any]]) -> None:
        if not found:
            click.echo("no switching change recorded")
        for c in found:
            flags = ", ".join(f"{f}={c[f]}" for f in ("normal_open", "in_service")
                              if c[f] is not None)
            pinned = ", pinned" if c["pinned"] else ""
            ended = f" in run {c['ended_run']}" if c["ended_run"] else ""
            click.echo(f"{c['id']:>6}  {c['device']}  {flags}  at {c['at']}  "
                       f"{c['status']}{ended}{pinned}  by {c['recorded_by']}"
                       + (f"  — {c['note']}" if c["note"] else ""))

    emit(changes, as_json, human)


@switching.command("pin")
@click.argument("ids", nargs=-1, required=True, type=int)
@pass_settings
def switching_pin(settings: Settings, ids: tuple[int, ...]) -> None:
    """Keep the active changes IDS against every later export."""
    count = set_pinned(settings.model_engine(), ids, True)
    click.echo(f"{count} switching change(s) pinned")


@switching.command("unpin")
@click.argument("ids", nargs=-1, required=True, type=int)
@pass_settings
def switching_unpin(settings: Settings, ids: tuple[int, ...]) -> None:
    """Let the next export decide on the changes IDS again (the later timestamp wins)."""
    count = set_pinned(settings.model_engine(), ids, False)
    click.echo(f"{count} switching change(s) unpinned")
