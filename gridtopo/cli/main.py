"""The ``gridtopo`` command line: thin click wrappers over the library.

Conventions shared by every command:

* ``--db URL`` (or ``$GRIDTOPO_DB``) chooses the database, default ``sqlite:///gridtopo.db``;
* ``--json`` prints one JSON document on stdout instead of the human summary;
* exit codes: 0 ok, 1 findings or a failed gate, 2 usage or input error, 3 internal error;
* errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import click

from gridtopo import __version__
from gridtopo.cli import (
    audit,
    calls,
    customer,
    database,
    export,
    generate,
    ingest,
    notices,
    outage,
    predictions,
    report,
    service,
    switching,
    trace,
)
from gridtopo.cli.settings import GridtopoGroup, Settings
from gridtopo.db import engine as db_engine


@click.group(cls=GridtopoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar=db_engine.ENV_VAR,
    metavar="URL",
    help=(
        "Database URL: sqlite:///PATH (SpatiaLite) or postgresql://USER@HOST/DB (PostGIS). "
        f"Default: ${db_engine.ENV_VAR}, else {db_engine.DEFAULT_URL}."
    ),
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="gridtopo")
@click.pass_context
def main(ctx: click.Context, db: str | None, debug: bool) -> None:
    """gridtopo: one station-feeder-transformer-customer model from marketing and
    distribution exports.

    \b
    Start here:
      gridtopo generate sources/ --customers 20000   # synthetic exports with known truth
      gridtopo init                                  # create the database (SpatiaLite)
      gridtopo info                                  # what the database holds

    Exit codes: 0 ok, 1 findings or failed gate, 2 usage or input error, 3 internal error.
    """
    ctx.obj = Settings(db=db, debug=debug)



for command in (
    database.init, database.db, database.info, generate.generate, ingest.ingest,
    ingest.runs_command, ingest.quarantine_command, audit.audit, audit.findings,
    export.export, export.snapshot, trace.trace, outage.outage, switching.switching,
    service.index_group,
    service.apikey, service.serve, customer.customer, calls.calls, predictions.predictions,
    notices.notices, report.report,
):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
