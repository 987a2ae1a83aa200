"""Exception classes shared by the library, the CLI and the API.

Every error a user can cause derives from :class:`GridtopoError`, carries a message that names
what is wrong (file, row, field, URL, option) and an ``exit_code`` the CLI uses. Anything else
that escapes is a bug.

>>> try:
...     raise DatabaseURLError("unsupported database URL 'mysql://x': use sqlite:/// or postgresql://")
... except GridtopoError as err:
...     err.exit_code
2
"""

from __future__ import annotations


class GridtopoError(Exception):
    """Base class of errors caused by input, configuration or environment, not by a bug."""

    exit_code: int = 2


class DatabaseURLError(GridtopoError):
    """The database URL cannot be parsed or names a backend gridtopo does not support."""


class DatabaseUnavailableError(GridtopoError):
    """The database cannot be opened or reached (missing file, server down, no permission)."""


class SpatialExtensionError(GridtopoError):
    """SpatiaLite cannot be loaded into SQLite, or PostGIS is not installed on the server."""


class SchemaError(GridtopoError):
    """The database schema is missing or at a revision this version of gridtopo cannot use."""


class InputError(GridtopoError):
    """An input file or option is unusable as a whole (missing, unreadable, wrong layout)."""


class OutputExistsError(GridtopoError, FileExistsError):
    """An output path already exists and overwriting was not asked for."""


class BulkLoadError(GridtopoError):
    """The database refused rows of a bulk load (a constraint or type the rows break)."""
