"""An audit as ``gridtopo audit`` runs it: the audit run, its report folder, the trend across
runs and the ``--fail-under`` gate, in one call whose typed result a caller prints.

With ``report``, the HTML report is written there and the GX project with its data docs into
``<report stem>_gx/`` beside it; the report's folder is created first, so a path that cannot be
written fails before any audit run is recorded. With ``fail_under``, the gate passes when the
province's overall score is at least that.

>>> Gate(fail_under=0.95, overall=0.9712).passed
True
>>> Gate(fail_under=0.98, overall=0.9712).to_dict()
{'fail_under': 0.98, 'passed': False}
>>> report_files(Path("out/audit.html")).gx_project.as_posix()
'out/audit_gx'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from gridtopo.db.engine import display_url
from gridtopo.quality.audit import AuditResult, run_audit
from gridtopo.quality.config import AuditConfig
from gridtopo.quality.errors import ReportPathError
from gridtopo.quality.report import write_report
from gridtopo.quality.scores import trend


@dataclass(frozen=True)
class Gate:
    """The ``--fail-under`` gate: the province's overall score against the bar."""

    fail_under: float
    overall: float

    @property
    def passed(self) -> bool:
        """Whether the overall score reaches ``fail_under``."""
        return not self.overall < self.fail_under

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as ``gridtopo audit --json`` prints it."""
        return {"fail_under": self.fail_under, "passed": self.passed}


@dataclass(frozen=True)
class ReportFiles:
    """Where the report of an audit goes: the HTML page and the GX project beside it."""

    html: Path
    gx_project: Path
    """The GX project (suites, results, data docs); the report links its data docs."""


def report_files(html: Path) -> ReportFiles:
    """The files of a report written to ``html``."""
    return ReportFiles(html, html.parent / f"{html.stem}_gx")


@dataclass(frozen=True)
class AuditOutcome:
    """What an audit found and scored, where its report is, and whether it passed the gate."""

    result: AuditResult
    report: ReportFiles | None
    gate: Gate | None

    @property
    def passed(self) -> bool:
        """False only when a gate was set and the overall score is below it."""
        return self.gate is None or self.gate.passed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the run's (:meth:`AuditResult.to_dict`), the report, the gate."""
        summary = self.result.to_dict()
        if self.report is not None:
            summary["report"] = str(self.report.html)
        summary["gate"] = None if self.gate is None else self.gate.to_dict()
        return summary


def audit_outcome(engine: Engine, config: AuditConfig, *, report: Path | None = None,
                  gx: bool = True, fail_under: float | None = None) -> AuditOutcome:
    """Audit the model of ``engine`` (:func:`~gridtopo.quality.audit.run_audit`); with
    ``report`` write the HTML report, the GX data docs and the trend of every run; with
    ``fail_under`` gate on the province's overall score.

    Raises :class:`ReportPathError` before auditing when the report's folder cannot be made.
    """
    files = report_files(report) if report is not None else None
    if files is not None:
        try:
            files.html.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ReportPathError(f"cannot create {files.html.parent}: {err.strerror}") from err
    result = run_audit(engine, config, files.gx_project if files else None, gx=gx)
    if files is not None:
        with engine.connect() as conn:
            history = trend(conn)
        write_report(files.html, result, history, display_url(engine),
                     config.now.date().isoformat())
    overall = result.scores["province"]["overall"]
    gate = None if fail_under is None else Gate(fail_under, overall)
    return AuditOutcome(result, files, gate)
