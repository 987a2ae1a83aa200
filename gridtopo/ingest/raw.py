"""The common result of every reader: a file's rows as text, before interpretation.

Readers (:mod:`gridtopo.ingest.delimited`, :mod:`gridtopo.ingest.readers`) return a
:class:`RawTable`: one ``Utf8`` column per source column, named by its header, plus where each
row sits in the file and whether it had the right number of fields. Everything after that
(header matching, types, rules) is the same whatever the format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

LINE = "_line"
"""Column of the 1-based line (row, feature) a row starts on; the header is line 1."""
FIELDS = "_fields"
"""Column holding a row's field count when it differs from the header's, else null."""
EXTRA = "(extra fields)"
"""Column holding the fields beyond the header's, joined by the delimiter."""


@dataclass
class RawTable:
    """A file's rows as text.

    ``frame`` has one Utf8 column per entry of ``headers`` (made unique and non-empty, in
    file order), maybe :data:`EXTRA`, and :data:`LINE` (Int64) and :data:`FIELDS` (Int32).
    Blank lines are already dropped; empty cells are null (CSV cells are not stripped yet).
    ``unit`` is what ``_line`` counts (``line``, ``row`` of a sheet, ``feature`` of a layer).
    ``sha256`` is the checksum of the file's bytes. ``fixed`` maps canonical fields to columns
    the reader derived itself (a layer's geometry), which no header or profile overrides.
    """

    frame: pl.DataFrame
    headers: list[str]
    file_format: str
    encoding: str | None
    unit: str = "line"
    sha256: str = ""
    fixed: Mapping[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def source_columns(self) -> list[str]:
        """The columns that hold source text (headers plus :data:`EXTRA` when present)."""
        return [c for c in self.frame.columns if c not in (LINE, FIELDS)]


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 16 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(16 << 20):
            digest.update(block)
    return digest.hexdigest()


def unique_headers(headers: Sequence[str | None]) -> list[str]:
    """Headers made usable as column names: stripped, blanks named ``column_<n>``
    (1-based position) and repeats suffixed ``" (2)"``, ``" (3)"``…

    >>> unique_headers(["户号", "", "户号", None])
    ['户号', 'column_2', '户号 (2)', 'column_4']
    """
    out: list[str] = []
    seen: set[str] = {LINE, FIELDS, EXTRA}
    for i, header in enumerate(headers):
        name = (header or "").strip() or f"column_{i + 1}"
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name} ({n})"
        seen.add(candidate)
        out.append(candidate)
    return out
