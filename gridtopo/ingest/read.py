"""``read_sources``: the reading half of ``gridtopo ingest`` — files in, validated canonical
tables, quarantined rows and per-file accounting out.

For every table found (:mod:`~gridtopo.ingest.discover`), each file is read as text
(:mod:`~gridtopo.ingest.readers`), its headers matched (:mod:`~gridtopo.ingest.headers`), its
values converted (:mod:`~gridtopo.ingest.convert`) and checked against the table's contract
(:mod:`~gridtopo.ingest.contracts`); then the valid rows of all the table's files have their
repeated keys resolved (:mod:`~gridtopo.ingest.dedupe`). Every source row ends up exactly once
as loaded, quarantined (:mod:`~gridtopo.ingest.quarantine`) or merged, and each file's
:class:`FileAccount` says how many of each — ``rows_read == rows_loaded + rows_quarantined +
rows_merged`` is asserted. A bad row never stops the run; a file that cannot be read as a
whole raises :class:`~gridtopo.errors.InputError`.

>>> bundle = read_sources(Path("exports/"))  # doctest: +SKIP
>>> bundle.tables["customers"].frame.columns[:3]  # doctest: +SKIP
['customer_id', 'customer_name', 'address']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from gridtopo.ingest.contracts import contract_problems
from gridtopo.ingest.convert import ROW, convert
from gridtopo.ingest.dedupe import Deduplicated, deduplicate
from gridtopo.ingest.discover import Found, discover
from gridtopo.ingest.headers import HeaderMap, map_headers
from gridtopo.ingest.profile import Profile, TableProfile
from gridtopo.ingest.quarantine import QUARANTINE_SCHEMA, quarantine_rows
from gridtopo.ingest.raw import RawTable
from gridtopo.ingest.readers import LAYER_FORMATS, read_raw
from gridtopo.ingest.tables import TABLES, Table, canonical_schema

Progress = Callable[[str, int, int], None]


@dataclass
class FileAccount:
    """One input file: identity (path, checksum, size, format, encoding) and what became of
    its rows. ``rows_read == rows_loaded + rows_quarantined + rows_merged`` always."""

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


@dataclass
class TableData:
    """One canonical table: its loadable rows and its quarantined rows.

    ``frame`` has every canonical column (absent optional ones null) with canonical dtypes,
    plus ``_file`` (Int32, index into :attr:`SourceBundle.files`) and ``_line`` (Int64,
    1-based line of the source file, header = 1; sheet row for xlsx, feature number for
    layers). ``quarantine`` has ``file``, ``line``, ``field``, ``value``, ``rule``,
    ``message`` and ``raw`` (the source row as JSON keyed by the file's headers).
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


@dataclass
class _Part:
    """One file of a table while its table is being read."""

    index: int
    label: str
    raw: RawTable
    headers: HeaderMap
    problems: pl.DataFrame


def _label(source: Path, found: Found) -> str:
    try:
        text = found.path.relative_to(source).as_posix()
    except ValueError:
        text = str(found.path)
    return f"{text}#{found.layer}" if found.layer else text


def _read_part(index: int, source: Path, found: Found, table: Table, settings: TableProfile,
               profile: Profile | None, progress: Progress | None,
               warnings: list[str]) -> tuple[_Part, pl.DataFrame, FileAccount]:
    label = _label(source, found)
    raw = read_raw(found.path, table, replace(settings, layer=found.layer or settings.layer),
                   progress, label=f"read {label}")
    warnings.extend(raw.warnings)
    headers = map_headers(table, raw.headers, label, settings.columns, raw.fixed,
                          str(profile.path) if profile else None)
    if headers.unknown:
        warnings.append(f"{label}: columns not used by {table.name} (kept only in quarantined "
                        f"rows' raw): {', '.join(headers.unknown)}")
    for header, name in headers.ignored.items():
        warnings.append(f"{label}: column {header!r} also names {name}, already read from "
                        f"{headers.fields[name]!r}; it is ignored")
    crs = None if raw.file_format in LAYER_FORMATS else settings.crs
    converted = convert(raw, table, headers, crs, settings.values)
    problems = pl.concat([converted.problems, contract_problems(converted.frame, table)])
    account = FileAccount(
        table=table.name, path=str(found.path), sha256=raw.sha256,
        size_bytes=found.path.stat().st_size, file_format=raw.file_format,
        encoding=raw.encoding, rows_read=raw.frame.height,
    )
    frame = converted.frame
    rows = pl.DataFrame([*frame.get_columns(),
                         pl.repeat(index, frame.height, dtype=pl.Int32, eager=True).alias("_file")])
    return _Part(index, label, raw, headers, problems), rows, account


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


def _quarantine(parts: list[_Part], result: Deduplicated, valid: np.ndarray,
                offsets: dict[int, int], files: list[FileAccount]) -> pl.DataFrame:
    """Quarantined rows of every file of a table, and its accounts completed."""
    quarantine = []
    for p in parts:
        conflicts = result.problems.filter(pl.col("_file") == p.index).drop("_file")
        quarantine.append(quarantine_rows(pl.concat([p.problems, conflicts]), p.raw, p.headers,
                                          p.index, p.label))
        account = files[p.index]
        account.rows_quarantined = quarantine[-1].height
        account.rows_merged = int((result.merged["_file"] == p.index).sum())
        account.rows_loaded = account.rows_read - account.rows_quarantined - account.rows_merged
        start = offsets[p.index]
        assert account.rows_loaded == int(valid[start:start + p.raw.frame.height].sum())
    return pl.concat(quarantine).cast(dict(QUARANTINE_SCHEMA.items()))


def _read_table(table: Table, inputs: list[Found], source: Path, profile: Profile | None,
                files: list[FileAccount], warnings: list[str],
                progress: Progress | None) -> TableData:
    settings = profile.table(table.name) if profile else TableProfile()
    parts: list[_Part] = []
    frames: list[pl.DataFrame] = []
    for found in inputs:
        part, frame, account = _read_part(len(files), source, found, table, settings, profile,
                                          progress, warnings)
        parts.append(part)
        frames.append(frame)
        files.append(account)
        del part, frame  # parts.clear() and del rows below must free the big frames
    if progress is not None:
        progress(f"validate {table.name}", 0, 1)
    rows = pl.concat(frames, rechunk=False)
    frames.clear()
    offsets = dict(zip([p.index for p in parts],
                       np.cumsum([0] + [p.raw.frame.height for p in parts[:-1]]), strict=True))
    invalid = pl.concat([
        p.problems.select(pl.lit(p.index, pl.Int32).alias("_file"), ROW) for p in parts
    ]).unique()
    valid = np.ones(rows.height, dtype=bool)
    if invalid.height:
        starts = invalid["_file"].replace_strict(list(offsets), list(offsets.values()),
                                                 return_dtype=pl.Int64)
        valid[(starts + invalid[ROW]).to_numpy()] = False
    result = deduplicate(rows, pl.Series(valid), table,
                         {p.index: (p.label, p.raw.unit) for p in parts})
    valid[result.dropped.to_numpy()] = False
    quarantine = _quarantine(parts, result, valid, offsets, files)
    parts.clear()
    columns = [rows[c].cast(t) for c, t in canonical_schema(table.name).items()]
    del rows
    return TableData(table.name, pl.DataFrame(_filtered(columns, valid)), quarantine)


def read_sources(source: Path | str, profile: Profile | None = None,
                 progress: Progress | None = None) -> SourceBundle:
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
