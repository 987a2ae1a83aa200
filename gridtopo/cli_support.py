"""Shared machinery of the ``gridtopo`` commands: settings, errors, ``--json``, progress.

Each topic keeps its commands in its own module (``gridtopo/<topic>/commands.py``) built from
these pieces; :mod:`gridtopo.cli` assembles them under one group.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from sqlalchemy import Engine

from gridtopo.db import engine as db_engine
from gridtopo.db import migrate
from gridtopo.errors import GridtopoError
from gridtopo.progress import Progress, progress_reporter

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INTERNAL = 3


@dataclass
class Settings:
    """Options given to the ``gridtopo`` group, passed to every command."""

    db: str | None
    debug: bool

    def engine(self, *, create: bool = False) -> Engine:
        """Open the chosen database (creating a new SQLite file only when ``create``)."""
        return db_engine.open_engine(self.db, create=create)

    def model_engine(self) -> Engine:
        """Open the chosen database and require its schema to be at the current revision."""
        engine = self.engine()
        migrate.require_current(engine)
        return engine


class GridtopoGroup(click.Group):
    """A click group that turns :class:`GridtopoError` into one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridtopoError as err:
            if _debug(ctx):
                raise
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as err:  # a bug: say so plainly, keep the traceback behind --debug
            if _debug(ctx):
                raise
            click.echo(
                f"Error: internal error {type(err).__name__}: {err} (rerun with --debug for the "
                "traceback and report it)",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)


def _debug(ctx: click.Context) -> bool:
    settings = ctx.find_object(Settings)
    return bool(settings and settings.debug) or "--debug" in sys.argv


def json_option(func: F) -> F:
    """Add ``--json`` to a command."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document instead of a summary."
    )(func)


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` to print it for a person."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        human(data)


@contextmanager
def command_progress(as_json: bool) -> Iterator[Progress | None]:
    """A rich progress reporter on an interactive stderr, nothing with ``--json``."""
    with progress_reporter(enabled=not as_json) as progress:
        yield progress


pass_settings = click.make_pass_decorator(Settings)




def display_url(engine: Engine) -> str:
    """The database URL as a user would write it, without driver name or password."""
    url = engine.url.set(drivername=engine.url.get_backend_name())
    return url.render_as_string(hide_password=True)
