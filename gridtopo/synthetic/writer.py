"""Incremental CSV output with exact control over encoding, number format and line numbers.

Polars renders each block of rows to UTF-8 text; a :class:`CsvFile` encodes it to the file's
encoding (GBK for the marketing exports, as real 营销 systems emit), hashes the bytes as they
go out, and counts lines so that a defect can be pinned to the 1-based line it sits on
(header = line 1). Every value is pre-formatted to a string by the helpers below, so the
number formats (6-decimal coordinates, integer capacities, ``YYYY-MM-DD HH:MM:SS``) do not
depend on polars' float printing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import polars as pl


@dataclass(frozen=True)
class FileRecord:
    """One written file, as listed in the manifest."""

    path: str  # relative to the output directory, with forward slashes
    encoding: str
    sha256: str
    rows: int  # data rows, header excluded
    bytes: int


class CsvFile:
    """A CSV file written block by block; ``line`` is the last line number written so far."""

    def __init__(self, root: Path, relpath: str, header: list[str], encoding: str) -> None:
        self.relpath = relpath
        self.encoding = encoding
        self.header = header
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("wb")
        self._sha = hashlib.sha256()
        self._bytes = 0
        self.rows = 0
        self.line = 0
        self._emit(",".join(header) + "\n")
        self.line = 1

    def _emit(self, text: str) -> None:
        data = text.encode(self.encoding)
        self._fh.write(data)
        self._sha.update(data)
        self._bytes += len(data)

    def write(self, frame: pl.DataFrame) -> int:
        """Append ``frame`` (columns in header order, all strings) and return the line number
        of its first row. Blank fields must be nulls: polars quotes empty strings."""
        if frame.columns != self.header:
            raise ValueError(f"{self.relpath}: columns {frame.columns} != header {self.header}")
        first = self.line + 1
        if frame.height:
            self._emit(frame.write_csv(include_header=False))
            self.rows += frame.height
            self.line += frame.height
        return first

    def close(self) -> FileRecord:
        """Flush and close; return the manifest entry."""
        self._fh.close()
        return FileRecord(self.relpath, self.encoding, self._sha.hexdigest(), self.rows,
                          self._bytes)

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._fh.closed:
            self._fh.close()


def fixed(values: npt.ArrayLike, decimals: int) -> pl.Series:
    """Format floats with exactly ``decimals`` decimals (``113.120000``), vectorised through
    integer arithmetic so that no per-value Python formatting is needed."""
    arr = np.asarray(values, dtype=np.float64)
    scale = 10**decimals
    scaled = np.rint(np.abs(arr) * scale).astype(np.int64)
    whole = pl.Series(scaled // scale).cast(pl.Utf8)
    if decimals:
        whole = whole + "." + pl.Series(scaled % scale).cast(pl.Utf8).str.zfill(decimals)
    negative = arr < 0
    if negative.any():
        whole = pick(("", "-"), negative.astype(np.int64)) + whole
    return whole.rename("")


def integers(values: npt.ArrayLike) -> pl.Series:
    """Integers as decimal strings."""
    return pl.Series(np.asarray(values, dtype=np.int64)).cast(pl.Utf8).rename("")


def padded(prefix: str, values: npt.ArrayLike, width: int) -> pl.Series:
    """Ids such as ``PB-0001234``: ``prefix`` plus the zero-padded number."""
    nums = pl.Series(np.asarray(values, dtype=np.int64)).cast(pl.Utf8).str.zfill(width)
    return (prefix + nums).rename("")


def timestamps(epoch_seconds: npt.ArrayLike) -> pl.Series:
    """Seconds since the Unix epoch (UTC-naive local time) as ``YYYY-MM-DD HH:MM:SS``."""
    secs = pl.Series(np.asarray(epoch_seconds, dtype=np.int64))
    return pl.from_epoch(secs, time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S").rename("")


def flags(values: npt.ArrayLike) -> pl.Series:
    """Booleans as ``true`` / ``false``."""
    return pick(("false", "true"), np.asarray(values, dtype=np.int64))


def blank_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Empty strings to nulls, so that they are written as empty fields rather than ``""``."""
    return frame.select([pl.when(pl.col(c) != "").then(pl.col(c)).alias(c)
                         for c in frame.columns])


def pick(options: list[str] | tuple[str, ...], index: npt.ArrayLike) -> pl.Series:
    """Vectorised ``options[index]``: gather strings from a small vocabulary."""
    return pl.Series(list(options), dtype=pl.Utf8).gather(
        pl.Series(np.asarray(index, dtype=np.int64))).rename("")
