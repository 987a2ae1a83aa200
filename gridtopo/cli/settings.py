"""What every command shares: the ``--db``/``--debug`` settings and turning errors into one line
and an exit code (0 ok, 1 findings or a failed gate, 2 usage or input error, 3 internal error).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click
from sqlalchemy import Engine

from gridtopo.db import engine as db_engine
from gridtopo.db import migrate
from gridtopo.errors import GridtopoError

EXIT_INTERNAL = 3


@dataclass
class Settings:
    """Options given to the ``gridtopo`` group, passed to every command."""

    db: str | None
    debug: bool

    def engine(self, *, create: bool = False, lock_wait_ms: int | None = None) -> Engine:
        """Open the chosen database (creating a new SQLite file only when ``create``)."""
        return db_engine.open_engine(self.db, create=create, lock_wait_ms=lock_wait_ms)

    def model_engine(self, *, lock_wait_ms: int | None = None) -> Engine:
        """Open the chosen database and require its schema to be at the current revision
        (``lock_wait_ms``: see :func:`gridtopo.db.engine.open_engine`)."""
        engine = self.engine(lock_wait_ms=lock_wait_ms)
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


pass_settings = click.make_pass_decorator(Settings)
