"""The common result of every reader: a file's rows as text, before interpretation.

A file's rows are text: one ``Utf8`` column per source column, named by its header, plus where
each row sits in the file and whether it had the right number of fields. Everything after
reading (header matching, types, rules) is the same whatever the format.

Readers (:mod:`gridtopo.ingest.formats`) hand the rows to a :class:`ChunkSink` as
:class:`RawChunk` s, so that a 14-million-row export never has to be held as text in one
piece: a CSV arrives in chunks of about :data:`gridtopo.ingest.encoding.CHUNK_BYTES`, a
workbook or GIS layer in one. :func:`gridtopo.ingest.delimited.read_delimited` collects the
chunks of a CSV into one :class:`RawTable`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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


@dataclass(frozen=True)
class RawChunk:
    """Consecutive rows of a file as text.

    ``frame`` is laid out like :attr:`RawTable.frame`, except that a delimited file's chunks
    always have :data:`EXTRA` (whether the file as a whole has it is only known at its end).
    ``start`` is the index of its first row among the file's rows (blank lines not counted).
    ``reread(rows)`` gives the frame's ``rows`` (positions in it) again, exactly as they
    were, once ``frame`` has been let go: a delimited reader reads them back from the file,
    a workbook or layer reader (small) keeps the frame.
    """

    frame: pl.DataFrame
    start: int
    reread: Callable[[pl.Series], pl.DataFrame]


class ChunkSink(Protocol):
    """Where a reader delivers a file's rows: :meth:`begin` once the layout is known, then
    :meth:`add` for every chunk in file order."""

    def begin(self, layout: RawTable) -> None:
        """A reading of the file starts. ``layout`` has its headers, format and unit and no
        rows. A reader that has to start the file over (a later chunk is not the encoding
        detected from the first MiB) calls it again: every chunk added before is void."""

    def add(self, chunk: RawChunk) -> None:
        """The next rows of the file."""


def rows_of(frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """The ``rows`` (positions) of ``frame``, column by column."""
    return pl.DataFrame([frame[c].gather(rows) for c in frame.columns])


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` copied into buffers of its own.

    Polars text columns are views into shared buffers: a few rows gathered from a chunk keep
    the whole chunk's text alive. Going through Arrow's offset-based strings copies just the
    rows' text, so rows held back (for quarantine) cost only their own size.
    """
    copied = pl.from_arrow(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))
    assert isinstance(copied, pl.DataFrame)
    return copied


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
