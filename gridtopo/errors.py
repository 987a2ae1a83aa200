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
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar


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
