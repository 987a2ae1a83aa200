"""Exception classes shared by the library, the CLI and the API.

Every error a user can cause derives from :class:`GridtopoError`, carries a message that names
what is wrong (file, row, field, URL, option), an ``exit_code`` the CLI uses and an
``http_status`` (with any ``http_headers``) the API answers it with: each class says its own
status — unknown id 404, a state conflict 409, unusable input 422, … — so that one exception
handler serves them all. Anything else that escapes is a bug.

>>> try:
...     raise DatabaseURLError("unsupported database URL 'mysql://x': use sqlite:/// or postgresql://")
... except GridtopoError as err:
...     err.exit_code, err.http_status
(2, 400)
>>> InputError.http_status, OutputExistsError.http_status
(422, 409)

Input is quoted in messages only through :func:`snippet`, so that a file linked from
elsewhere, a binary blob or a 10 MB field never ends up whole on a terminal or in a stored
run message:

>>> snippet("root:x:0:0:root:/root:/bin/bash\x1b[2J and much more text", 24)
"'root:x:0:0:root:/root:/b…'"
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar

SNIPPET_CHARS = 40
"""Longest piece of input text an error message quotes."""


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` quoted for a message: control and format characters (escape sequences, NULs,
    bidi overrides) dropped, whitespace runs made one space, cut to ``limit`` characters with
    an ellipsis."""
    cleaned = "".join(" " if ch.isspace() else ch for ch in text
                      if ch.isspace() or unicodedata.category(ch)[0] != "C")
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        cleaned = cleaned[:limit] + "…"
    return repr(cleaned)


def snippets(texts: Sequence[str], count: int = 12) -> str:
    """The first ``count`` of ``texts`` as :func:`snippet` s, comma-separated (a file's
    headers in a message: a file that is no export shows only a short, clean piece).

    >>> snippets(["户号", "户名"] + [f"c{i}" for i in range(20)], 3)
    "'户号', '户名', 'c0', … (22 in all)"
    """
    shown = ", ".join(snippet(t) for t in texts[:count])
    return shown + (f", … ({len(texts)} in all)" if len(texts) > count else "")


class GridtopoError(Exception):
    """Base class of errors caused by input, configuration or environment, not by a bug."""

    exit_code: ClassVar[int] = 2
    http_status: ClassVar[int] = 400
    """The HTTP status the API answers this error with (400 unless a subclass says more)."""
    http_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Headers that go with that answer (``WWW-Authenticate`` for a refused key)."""


class DatabaseURLError(GridtopoError):
    """The database URL cannot be parsed or names a backend gridtopo does not support."""


class DatabaseUnavailableError(GridtopoError):
    """The database cannot be opened or reached (missing file, server down, no permission)."""

    http_status = 503


class SpatialExtensionError(GridtopoError):
    """SpatiaLite cannot be loaded into SQLite, or PostGIS is not installed on the server."""


class SchemaError(GridtopoError):
    """The database schema is missing or at a revision this version of gridtopo cannot use."""


class InputError(GridtopoError):
    """An input file or option is unusable as a whole (missing, unreadable, wrong layout)."""

    http_status = 422


class OutputExistsError(GridtopoError, FileExistsError):
    """An output path already exists and overwriting was not asked for."""

    http_status = 409


class BulkLoadError(GridtopoError):
    """The database refused rows of a bulk load (a constraint or type the rows break)."""


class RefusedInputError(InputError):
    """A full export that would silently empty or shrink part of the model (a table's file
    missing, or far fewer rows than the previous run): refused unless the steward allows it."""


class RunInProgressError(GridtopoError):
    """Another ingest of the same database is running (one at a time per database)."""

    http_status = 409


class EnvironmentFailure(GridtopoError):
    """The machine or the database server gave out during a run (disk full, connection lost):
    nothing in the input is wrong, and the previous model is intact."""

    http_status = 503
