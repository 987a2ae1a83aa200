"""Errors of the quality audit; each is the user's to fix, so each exits with code 2.

>>> AuditConfigError("rules.toml: unknown rule 'nope'").exit_code
2
"""

from __future__ import annotations

from gridtopo.errors import GridtopoError


class AuditConfigError(GridtopoError):
    """A rule configuration names an unknown rule or threshold, or a value of the wrong type."""


class EmptyModelError(GridtopoError):
    """The database holds no ingested model to audit (never ingested, or ingested nothing)."""


class UnknownFindingError(GridtopoError):
    """A status change names findings that do not exist; nothing was changed."""


class ReportPathError(GridtopoError):
    """The audit report's folder cannot be created (checked before the audit runs)."""
