"""The API's own refusals, as :class:`~gridtopo.errors.GridtopoError` classes with their
HTTP status (the key's, in :mod:`gridtopo.api.keys`; the personal-data limit's, in
:mod:`gridtopo.api.limits`; a model switch's, in :mod:`gridtopo.api.served`).

>>> RetryLaterError("busy", retry_after=0).retry_after
1
"""

from __future__ import annotations

from gridtopo.errors import GridtopoError


class RetryLaterError(GridtopoError):
    """A refusal that passes: the answer says when to try again (``Retry-After``, seconds)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class AmbiguousKeyError(GridtopoError):
    """A request presenting more than one API key (repeated headers, or ``X-API-Key`` and
    ``Authorization: Bearer`` with different keys): refused rather than guessed at (400)."""


class BodyTimeoutError(GridtopoError):
    """The request body did not arrive in time (408)."""

    http_status = 408
