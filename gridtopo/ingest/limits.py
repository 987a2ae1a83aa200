"""Limits of what one ingest reads, and the service region coordinates must lie in.

An export folder is input from elsewhere: a file can be a mistake (a 1.2 GB sheet packed into
a 4.7 MB .xlsx, a 10 MB "address"), and ingest must say so instead of reading it into memory.
Each limit has a default that a real export of a province stays well under, and a profile's
``[limits]`` table changes it (:mod:`gridtopo.ingest.profile`)::

    region = [73.5, 3.8, 135.1, 53.6]   # lon_min, lat_min, lon_max, lat_max (China)

    [limits]
    file_bytes = 17179869184    # largest input file (16 GiB)
    xlsx_bytes = 1073741824     # largest workbook once unpacked (1 GiB)
    rows = 50000000             # most rows in one file
    field_chars = 2000          # longest value of a field with no length of its own
    shrink_floor = 0.5          # a table may not drop below this share of the model's rows

A file over ``file_bytes``, a workbook whose members unpack to more than ``xlsx_bytes``
(checked from the zip directory before anything is unpacked) or a file with more than
``rows`` rows is refused as a whole (exit 2, naming the file and the limit). A value longer
than ``field_chars`` (or than its field's own ``max_length``) is set aside — field-level
quarantine, rule ``too_long`` — and the row kept when it can do without the field; a stored
quarantine row quotes at most :data:`RAW_CHARS` characters of any source value.
Coordinates outside ``region`` are set aside the same way (rule ``outside_region``).

>>> Limits().xlsx_bytes >> 20, CHINA
(1024, (73.5, 3.8, 135.1, 53.6))
"""

from __future__ import annotations

from dataclasses import dataclass

CHINA = (73.5, 3.8, 135.1, 53.6)
"""lon_min, lat_min, lon_max, lat_max of the default service region: China."""
RAW_CHARS = 200
"""Longest source value a quarantine row's ``raw`` keeps (longer ones are cut, with ``…``)."""


@dataclass(frozen=True)
class Limits:
    """The limits of one ingest (see the module docstring)."""

    file_bytes: int = 16 << 30
    xlsx_bytes: int = 1 << 30
    rows: int = 50_000_000
    field_chars: int = 2000
    shrink_floor: float = 0.5
    region: tuple[float, float, float, float] = CHINA


LIMIT_KEYS = ("file_bytes", "xlsx_bytes", "rows", "field_chars", "shrink_floor")
