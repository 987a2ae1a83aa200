"""``gridtopo audit`` and ``gridtopo findings``: the data steward's commands, over
:func:`gridtopo.quality.outcome.audit_outcome` and :mod:`gridtopo.quality.findings`.

.. code-block:: sh

    gridtopo audit --now 2024-12-31 --report audit.html --fail-under 0.95
    gridtopo audit --config rules.toml --json
    gridtopo findings list --rule record_stale --status open
    gridtopo findings set 12 accepted --note "checked on site"
    gridtopo findings set --file ids.csv waived --note "known, planned for 2025"

``audit`` exits 1 when ``--fail-under`` is given and the province's overall score is below it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridtopo.cli.output import command_progress, emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.db.models import FINDING_STATUSES
from gridtopo.quality.config import RULES, load_config, parse_now
from gridtopo.quality.errors import ReportPathError


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Rule configuration (TOML): thresholds, severities, disabled rules.")
@click.option("--now", "now_text", metavar="DATE",
              help="The audit's clock for timeliness (ISO date); default: the config's, else now.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML report here, with the GX data docs in REPORT_gx/ beside it.")
@click.option("--no-gx", is_flag=True, help="Skip the Great Expectations suites.")
@click.option("--fail-under", type=click.FloatRange(0, 1), metavar="SCORE",
              help="Exit 1 when the province's overall score is below SCORE (0..1).")
@json_option
@pass_settings
def audit(settings: Settings, config_path: Path | None, now_text: str | None,
          report_path: Path | None, no_gx: bool, fail_under: float | None,
          as_json: bool) -> None:
    """Audit the stored model: rules, GX suites, findings worklist and scorecards."""
    from gridtopo.quality.outcome import audit_outcome

    if config_path is not None and not config_path.exists():
        raise click.BadParameter(f"{config_path} does not exist", param_hint="--config")
    config = load_config(config_path, now=parse_now(now_text, "--now") if now_text else None)
    engine = settings.model_engine()
    with command_progress(as_json):
        try:
            outcome = audit_outcome(engine, config, report=report_path, gx=not no_gx,
                                    fail_under=fail_under)
        except ReportPathError as err:
            raise click.BadParameter(str(err), param_hint="--report") from err
    emit(outcome.to_dict(), as_json, _print_audit)
    if not outcome.passed:
        raise click.exceptions.Exit(1)


def _print_audit(s: dict[str, Any]) -> None:
    p = s["scores"]["province"]
    click.echo(f"audit run {s['audit_run_id']}: overall {p['overall']:.1%} (completeness "
               f"{p['completeness']:.1%}, accuracy {p['accuracy']:.1%}, timeliness "
               f"{p['timeliness']:.1%})")
    c = s["changes"]
    click.echo(f"  {s['findings']['total']:,} findings: {c['new']:,} new, {c['reopened']:,} "
               f"reopened, {c['resolved']:,} resolved since the last run")
    for rule, r in s["findings"]["by_rule"].items():
        click.echo(f"  {r['count']:>9,}  {r['severity']:<8} {rule}")
    if s["gx"]:
        click.echo(f"  GX checkpoint: {'passed' if s['gx']['success'] else 'failed'}"
                   + (f", data docs {s['gx']['data_docs']}" if s["gx"]["data_docs"] else ""))
    if s.get("report"):
        click.echo(f"  report: {s['report']}")
    if s["gate"] and not s["gate"]["passed"]:
        click.echo(f"  gate failed: overall {p['overall']:.3f} < {s['gate']['fail_under']}")


@click.group()
def findings() -> None:
    """The findings worklist: list findings and set their status."""


@findings.command("list")
@click.option("--rule", type=click.Choice(sorted(RULES)), help="Only this rule.")
@click.option("--status", type=click.Choice(FINDING_STATUSES), help="Only this status.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@json_option
@pass_settings
def findings_list(settings: Settings, rule: str | None, status: str | None, limit: int | None,
                  as_json: bool) -> None:
    """List stored findings, newest audit run first."""
    from gridtopo.quality.findings import list_findings

    rows = list_findings(settings.model_engine(), rule=rule, status=status, limit=limit)

    def human(items: list[dict[str, Any]]) -> None:
        for f in items:
            fix = (f["suggested_fix"] or {}).get("text")
            click.echo(f"{f['id']:>8} {f['status']:<8} {f['severity']:<8} {f['rule']:<32} "
                       f"{f['message']}" + (f"\n{'':>9}fix: {fix}" if fix else ""))
        click.echo(f"{len(items):,} finding(s)")

    emit(rows, as_json, human)


@findings.command("set")
@click.argument("args", nargs=-1, required=True, metavar="[ID] STATUS")
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path),
              help="CSV with an 'id' column (and optional 'note') naming the findings.")
@click.option("--note", help="Why; kept with the status.")
@json_option
@pass_settings
def findings_set(settings: Settings, args: tuple[str, ...], file_path: Path | None,
                 note: str | None, as_json: bool) -> None:
    """Set the status (open, accepted, fixed, waived) of finding ID or of those in --file.

    Accepting a finding whose suggested fix is a link stores it as a steward decision that the
    next `gridtopo ingest` applies.
    """
    from gridtopo.quality.findings import read_status_file, set_status

    *ids_text, status = args
    if status not in FINDING_STATUSES:
        raise click.BadParameter(f"{status!r} is not one of {', '.join(FINDING_STATUSES)}",
                                 param_hint="STATUS")
    notes: list[str | None] | None = None
    if file_path is not None:
        if ids_text:
            raise click.UsageError("give finding ids or --file, not both")
        frame = read_status_file(file_path)
        ids, notes = frame["id"].to_list(), frame["note"].to_list()
    else:
        if len(ids_text) != 1 or not ids_text[0].isdigit():
            raise click.UsageError("give one finding ID and a STATUS, or --file F STATUS")
        ids = [int(ids_text[0])]
    result = set_status(settings.model_engine(), ids, status, note=note, notes=notes)
    emit(result, as_json, lambda r: click.echo(
        f"{r['changed']:,} finding(s) set {r['status']}"
        + (f"; {r['decisions']:,} steward decision(s) stored for the next ingest"
           if r["decisions"] else "")))
