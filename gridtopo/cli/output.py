"""How every command talks to a person or a program: ``--json``, one-line summaries, progress
bars on an interactive stderr, and the few value types the commands share.

>>> iso_datetime("2026-11-25T18:00").isoformat()
'2026-11-25T18:00:00+00:00'
>>> iso_datetime(None) is None
True
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from gridtopo.clock import parse_iso
from gridtopo.outages.notices import RULES_ENV, NoticeRules
from gridtopo.progress import ProgressCallback

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """Add ``--json`` to a command."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document instead of a summary."
    )(func)


def notice_rules_option(func: F) -> F:
    """``--notice-rules FILE`` (or ``$GRIDTOPO_NOTICE_RULES``): the TOML file of the rules
    by which event changes write customer notices, passed on as ``notice_rules``."""
    def load(_: click.Context, __: click.Parameter, value: str | None) -> NoticeRules | None:
        return NoticeRules.from_toml(value) if value else None
    return click.option("--notice-rules", "notice_rules", envvar=RULES_ENV, metavar="FILE",
                        callback=load, expose_value=True,
                        help="TOML file of notice rules (lead times, quiet hours, "
                             "templates); default the built-in rules.")(func)


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` to print it for a person."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


def iso_datetime(value: str | None) -> dt.datetime | None:
    """An option's ISO date-time as aware UTC (no offset means UTC); a usage error otherwise."""
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not an ISO date-time such as "
                                 "2026-11-25T18:00 (UTC unless it has an offset)") from err


class ProgressBars:
    """One rich bar per stage, created on the stage's first update."""

    def __init__(self, bars: RichProgress) -> None:
        self._bars = bars
        self._tasks: dict[str, TaskID] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` units of ``stage`` are finished."""
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._bars.add_task(stage, total=total)
        self._bars.update(task, completed=done, total=total)


@contextmanager
def command_progress(as_json: bool) -> Iterator[ProgressCallback | None]:
    """A progress callback drawing rich bars on an interactive stderr; ``None`` with ``--json``
    or when stderr is not a terminal (the library then reports nothing)."""
    if as_json or not sys.stderr.isatty():
        yield None
        return
    bars = RichProgress(
        TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True), transient=False,
    )
    with bars:
        yield ProgressBars(bars).update
