"""``read_sources``: the reading half of ``gridtopo ingest`` — files in, validated canonical
tables, quarantined rows and per-file accounting out.

For every table found (:mod:`~gridtopo.ingest.discover`), each file is read as text
(:mod:`~gridtopo.ingest.formats`), its headers matched (:mod:`~gridtopo.ingest.headers`), its
values converted (:mod:`~gridtopo.ingest.convert`) and checked against the table's contract
(:mod:`~gridtopo.ingest.contracts`); a row whose problems concern only fields it can do
without is kept with those fields blank (:mod:`~gridtopo.ingest.unusable`); then the
rows of all the table's files have their repeated keys resolved
(:mod:`~gridtopo.ingest.dedupe`). A CSV is read, converted and checked
chunk by chunk, and only the converted rows are kept: the text of a 14-million-row export is
never held whole (the few rows that lose a duplicate conflict have theirs read back from the
file for their quarantine rows), so memory stays close to the loadable frames themselves; the
result does not depend on where chunks end. Every source row ends up exactly once
as loaded, quarantined (:mod:`~gridtopo.ingest.quarantine`) or merged, and each file's
:class:`FileAccount` says how many of each — ``rows_read == rows_loaded + rows_quarantined +
rows_merged`` is asserted; ``fields_quarantined`` counts the fields set aside in kept rows,
apart from that. A bad row never stops the run; a file that cannot be read as a
whole raises :class:`~gridtopo.errors.InputError`.

>>> bundle = read_sources(sources)
>>> bundle.tables["customers"].frame.columns[:3]
['customer_id', 'customer_name', 'address']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from gridtopo.errors import InputError, snippet, snippets
from gridtopo.ingest.contracts import contract_problems, limit_problems
from gridtopo.ingest.convert import ROW, convert
from gridtopo.ingest.dedupe import Deduplicated, deduplicate
from gridtopo.ingest.discover import Found, discover
from gridtopo.ingest.formats import LAYER_FORMATS, read_raw
from gridtopo.ingest.headers import HeaderMap, map_headers
from gridtopo.ingest.limits import Limits
from gridtopo.ingest.profile import Profile, TableProfile
from gridtopo.ingest.quarantine import QUARANTINE_SCHEMA, empty_quarantine, quarantine_rows
from gridtopo.ingest.tables import TABLES, Table, canonical_schema
from gridtopo.ingest.textrows import RawChunk, RawTable, detached, rows_of
from gridtopo.ingest.unusable import KEPT, blank_unusable, row_kept
from gridtopo.progress import ProgressCallback


@dataclass
class FileAccount:
    """One input file: identity (path, checksum, size, format, encoding) and what became of
    its rows. ``rows_read == rows_loaded + rows_quarantined + rows_merged`` always;
    ``fields_quarantined`` counts the unusable fields of rows that were kept (loaded or merged)
    without them, which is no part of that sum."""

    table: str
    path: str
    sha256: str
    size_bytes: int
    file_format: str
    encoding: str | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_merged: int = 0
    fields_quarantined: int = 0


@dataclass
class TableData:
    """One canonical table: its loadable rows and its quarantined rows.

    ``frame`` has every canonical column (absent optional ones null) with canonical dtypes,
    plus ``_file`` (Int32, index into :attr:`SourceBundle.files`) and ``_line`` (Int64,
    1-based line of the source file, header = 1; sheet row for xlsx, feature number for
    layers). ``quarantine`` has ``file``, ``line``, ``field``, ``value``, ``rule``,
    ``message``, ``raw`` (the source row as JSON keyed by the file's headers), ``row_kept``
    (only the field was set aside: one quarantined row per such field) and ``entity_id``
    (:mod:`~gridtopo.ingest.quarantine`).
    """

    name: str
    frame: pl.DataFrame
    quarantine: pl.DataFrame


@dataclass
class SourceBundle:
    """Everything read from a source directory."""

    tables: dict[str, TableData] = field(default_factory=dict)
    files: list[FileAccount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _File:
    """One file of a table while the table is being read: the :class:`ChunkSink` its reader
    delivers to.

    Each chunk is converted and checked against the contract as it arrives. The text of the
    rows with problems is held (copied out of the chunk) with their problems, for their
    quarantine rows; of the rest only the converted rows are kept, and the chunk's text is
    let go — the reader can give it again (:attr:`RawChunk.reread`) for the rows that turn out
    to lose a duplicate conflict once the whole table is known. ``_row`` in ``held`` and
    ``problems`` is the row's index in the file.
    """

    def __init__(self, index: int, label: str, table: Table, settings: TableProfile,
                 profile: Profile | None) -> None:
        self.limits = profile.limits if profile else Limits()
        self.index = index
        self.label = label
        self.table = table
        self.settings = settings
        self.profile = profile
        self.schema = canonical_schema(table.name)
        """The loadable frame's columns, into whose dtypes each chunk is cast as it is kept
        (``repeated`` text as Categorical codes: the kept chunks are small from the start)."""
        self.layout: RawTable | None = None
        """As the reader announced the file; once read, as it returned it (whole-file columns,
        encoding, checksum)."""
        self.headers: HeaderMap | None = None
        self._forget()

    def _forget(self) -> None:
        """Drop everything a reading of the file gathered."""
        self.notes: list[str] = []
        self.frames: list[pl.DataFrame] = []
        self.valid: list[np.ndarray] = []
        self.held: list[pl.DataFrame] = []
        self.problems: list[pl.DataFrame] = []
        self.chunks: list[tuple[int, Callable[[pl.Series], pl.DataFrame]]] = []
        self.rows = 0

    @property
    def unit(self) -> str:
        """What the file's ``_line`` counts."""
        assert self.layout is not None
        return self.layout.unit

    def begin(self, layout: RawTable) -> None:
        """Map the headers (a missing required field fails here, before the file is read);
        forget any earlier reading of the file."""
        self._forget()
        self.layout = layout
        self.headers = map_headers(self.table, layout.headers, self.label,
                                   self.settings.columns, layout.fixed,
                                   str(self.profile.path) if self.profile else None)
        if self.headers.unknown:
            self.notes.append(f"{self.label}: columns not used by {self.table.name} (kept "
                              f"only in quarantined rows' raw): {snippets(self.headers.unknown)}")
        for header, name in self.headers.ignored.items():
            self.notes.append(f"{self.label}: column {snippet(header)} also names {name}, "
                              f"already read from {snippet(self.headers.fields[name])}; it is "
                              "ignored")

    def add(self, chunk: RawChunk) -> None:
        """Convert and check the chunk; keep its converted rows and what quarantine needs."""
        assert self.layout is not None and self.headers is not None
        if self.rows + chunk.frame.height > self.limits.rows:
            raise InputError(f"{self.label}: more than {self.limits.rows:,} rows, the rows limit "
                             "(raise it with [limits] rows = N in a profile if the export "
                             "really is this large)")
        crs = None if self.layout.file_format in LAYER_FORMATS else self.settings.crs
        converted = convert(replace(self.layout, frame=chunk.frame), self.table, self.headers,
                            crs, self.settings.values)
        problems = pl.concat([converted.problems,
                              contract_problems(converted.frame, self.table),
                              limit_problems(converted.frame, self.table, self.limits)])
        bad = problems[ROW].unique().sort()
        valid = np.ones(chunk.frame.height, dtype=bool)
        frame = converted.frame
        if bad.len():
            problems = problems.with_columns(row_kept(self.table))
            valid[problems.filter(~pl.col(KEPT))[ROW].to_numpy()] = False
            frame = blank_unusable(frame, problems, self.table)
            self.held.append(_held(rows_of(chunk.frame, bad), bad + chunk.start))
            self.problems.append(problems.drop(KEPT).with_columns(pl.col(ROW) + chunk.start))
        self.frames.append(pl.DataFrame([
            *(frame[c].cast(dtype) for c, dtype in self.schema.items() if c != "_file"),
            pl.repeat(self.index, frame.height, dtype=pl.Int32, eager=True).alias("_file"),
        ]))
        self.valid.append(valid)
        self.chunks.append((chunk.start, chunk.reread))
        self.rows += frame.height

    def reread(self, rows: pl.Series) -> pl.DataFrame:
        """The held form of ``rows`` (indices in the file, ascending), had again from their
        chunks' readers."""
        starts = np.array([start for start, _ in self.chunks])
        which = np.searchsorted(starts, rows.to_numpy(), side="right") - 1
        held = []
        for number in np.unique(which):
            start, reread = self.chunks[number]
            these = rows.filter(pl.Series(which == number))
            held.append(_held(reread(these - start), these))
        return pl.concat(held)

    def quarantine(self, conflicts: pl.DataFrame) -> pl.DataFrame:
        """The file's quarantined rows: those with problems and those in ``conflicts``
        (problems of rows that lost a duplicate conflict)."""
        assert self.layout is not None and self.headers is not None
        problems = pl.concat([*self.problems, conflicts])
        if problems.height == 0:
            return empty_quarantine()
        problems = problems.with_columns(row_kept(self.table))  # a lost conflict refuses
        held = self.held
        # a kept row (only a field set aside) that lost a conflict is held already
        unread = conflicts[ROW].unique().sort()
        if self.held and unread.len():
            unread = unread.filter(~unread.is_in(pl.concat([h[ROW] for h in self.held])
                                                 .implode()))
        if unread.len():
            held = [*held, self.reread(unread)]
        held_rows = pl.concat(held)
        position = problems[ROW].replace_strict(
            held_rows[ROW], pl.int_range(held_rows.height, eager=True))
        raw = replace(self.layout, frame=pl.DataFrame([held_rows[c]
                                                       for c in self.layout.frame.columns]))
        return quarantine_rows(problems.with_columns(position.alias(ROW)), raw, self.headers,
                               self.table.field(self.table.key), self.index, self.label)


def _held(text: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """Rows of a chunk (``text``, gathered from it) as held for quarantine: copied out of the
    chunk, with their indices in the file (``rows``)."""
    return detached(text).with_columns(rows.cast(pl.Int64).alias(ROW))


def _label(source: Path, found: Found) -> str:
    try:
        text = found.path.relative_to(source).as_posix()
    except ValueError:
        text = str(found.path)
    return f"{text}#{found.layer}" if found.layer else text


def _read_part(index: int, source: Path, found: Found, table: Table, settings: TableProfile,
               profile: Profile | None, progress: ProgressCallback | None, warnings: list[str]
               ) -> tuple[_File, FileAccount]:
    part = _File(index, _label(source, found), table, settings, profile)
    raw = read_raw(found.path, table, part, replace(settings, layer=found.layer or settings.layer),
                   progress, label=f"read {part.label}", limits=part.limits)
    part.layout = raw  # as the whole file is: its columns, encoding and checksum
    warnings.extend(raw.warnings)
    warnings.extend(part.notes)
    account = FileAccount(
        table=table.name, path=str(found.path), sha256=raw.sha256,
        size_bytes=found.path.stat().st_size, file_format=raw.file_format,
        encoding=raw.encoding, rows_read=part.rows,
    )
    return part, account


def _filtered(columns: list[pl.Series], keep: np.ndarray) -> list[pl.Series]:
    """The rows of ``columns`` where ``keep``, each as one contiguous chunk, copied column by
    column while the list gives up each original as soon as its copy exists: a 14-million-row
    table must never be held twice.

    Building frames from series (never ``select``/``with_columns`` on a big frame whose
    columns are chunked differently, which makes polars copy the whole frame) and handing out
    single-chunk columns keeps later frame operations from doing that copy either.
    """
    rows = None if keep.all() else pl.Series(np.flatnonzero(keep))
    out: list[pl.Series] = []
    while columns:
        column = columns.pop(0)
        out.append(column.rechunk() if rows is None else column.gather(rows))  # one chunk
        del column
    return out


def _quarantine(parts: list[_File], result: Deduplicated, valid: np.ndarray,
                files: list[FileAccount]) -> pl.DataFrame:
    """Quarantined rows of every file of a table, and its accounts completed."""
    quarantine = []
    start = 0
    for p in parts:
        conflicts = result.problems.filter(pl.col("_file") == p.index).drop("_file")
        quarantine.append(p.quarantine(conflicts))
        account = files[p.index]
        account.fields_quarantined = int(quarantine[-1][KEPT].sum())
        account.rows_quarantined = quarantine[-1].height - account.fields_quarantined
        account.rows_merged = int((result.merged["_file"] == p.index).sum())
        account.rows_loaded = account.rows_read - account.rows_quarantined - account.rows_merged
        assert account.rows_loaded == int(valid[start:start + p.rows].sum())
        start += p.rows
    return pl.concat(quarantine).cast(dict(QUARANTINE_SCHEMA.items()))


def _read_table(table: Table, inputs: list[Found], source: Path, profile: Profile | None,
                files: list[FileAccount], warnings: list[str],
                progress: ProgressCallback | None) -> TableData:
    settings = profile.table(table.name) if profile else TableProfile()
    parts: list[_File] = []
    for found in inputs:
        part, account = _read_part(len(files), source, found, table, settings, profile,
                                   progress, warnings)
        parts.append(part)
        files.append(account)
        del part
    if progress is not None:
        progress(f"validate {table.name}", 0, 1)
    rows = pl.concat([frame for p in parts for frame in p.frames], rechunk=False)
    valid = np.concatenate([v for p in parts for v in p.valid])
    for p in parts:
        p.frames.clear()  # del rows below must free the converted chunks
    result = deduplicate(rows, pl.Series(valid), table,
                         {p.index: (p.label, p.unit) for p in parts})
    valid[result.dropped.to_numpy()] = False
    quarantine = _quarantine(parts, result, valid, files)
    parts.clear()
    columns = [rows[c] for c in canonical_schema(table.name)]
    del rows
    return TableData(table.name, pl.DataFrame(_filtered(columns, valid)), quarantine)


def read_sources(source: Path | str, profile: Profile | None = None,
                 progress: ProgressCallback | None = None) -> SourceBundle:
    """Read every export under ``source`` (see the module docstring).

    ``profile`` (from :func:`gridtopo.ingest.load_profile`) overrides discovery and layout;
    ``progress(stage, done, total)`` is called as files are read and tables validated.
    """
    source = Path(source)
    found, warnings = discover(source, profile)
    bundle = SourceBundle(warnings=warnings)
    for name, inputs in found.items():
        bundle.tables[name] = _read_table(TABLES[name], inputs, source, profile, bundle.files,
                                          bundle.warnings, progress)
    for account in bundle.files:
        assert account.rows_read == (account.rows_loaded + account.rows_quarantined
                                     + account.rows_merged), account
    return bundle
