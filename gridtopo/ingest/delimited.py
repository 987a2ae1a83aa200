"""Read CSV/TSV exports: encoding, delimiter, header, and every row as text with its line.

The file is streamed as UTF-8 chunks (:mod:`gridtopo.ingest.encoding`); polars parses each
chunk with every column as text (ids keep their leading zeros) into a frame one column wider
than the header, so a row with too many fields shows in the extra column. Line numbers and
field counts come for free when every record is one line and no row is short; otherwise a
vectorised numpy scan of the chunk's bytes (newlines and delimiters outside quotes) gives them.
A chunk polars refuses (a stray quote, as hand-edited exports have) is parsed by Python's
lenient :mod:`csv` module instead — the only per-row Python loop, and only for such chunks.

:func:`stream_delimited` hands each chunk's rows to a :class:`~gridtopo.ingest.textrows.ChunkSink`
as soon as they are parsed, with a way to read some of them back from the file later;
:func:`read_delimited` collects them into one frame.

>>> raw = read_delimited(sources / "marketing" / "customers.csv")
>>> raw.frame.columns[:3], raw.encoding
(['户号', '户名', '用电地址'], 'gbk')
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from gridtopo.errors import InputError, snippet
from gridtopo.ingest.encoding import (
    SAMPLE_BYTES,
    Chunk,
    DecodeFailure,
    Transcoder,
    not_text,
    sniff_encoding,
    utf8_error,
)
from gridtopo.ingest.textrows import (
    EXTRA,
    FIELDS,
    LINE,
    ChunkSink,
    RawChunk,
    RawTable,
    rows_of,
    unique_headers,
)
from gridtopo.progress import ProgressCallback

CSV_FIELD_CHARS = 1 << 30
"""The csv module's field limit while it parses a chunk (its default, 131,072, would refuse a
long field that ingest's own ``field_chars`` limit sets aside as ``too_long``)."""

DELIMITERS = (",", "\t", ";", "|")
"""Delimiters tried when none is given, in order of preference on a tie."""

IntArray = npt.NDArray[np.int64]
T = TypeVar("T")


def sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter that splits the header line into the most fields.

    >>> sniff_delimiter("户号;户名;地址"), sniff_delimiter("a\\tb,c\\td")
    (';', '\\t')
    """
    best, most = ",", 1
    for delimiter in DELIMITERS:
        n = len(next(csv.reader([header_line], delimiter=delimiter)))
        if n > most:
            best, most = delimiter, n
    return best


def _column_names(width: int) -> list[str]:
    return [f"c{i}" for i in range(width + 1)]


def scan_records(body: bytes, delimiter: str) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """For every record of ``body`` (well-formed CSV): the 0-based line it starts on within
    ``body``, its number of fields and its byte span (start, end), from the positions of
    newlines and delimiters that are outside quotes (an even number of quotes before them)."""
    if not body:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    a = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(a == 10)
    seps = np.flatnonzero(a == ord(delimiter))
    ends = newlines
    if b'"' in body:
        quotes = np.flatnonzero(a == 34)
        ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
        seps = seps[np.searchsorted(quotes, seps) % 2 == 0]
    if a[-1] != 10:
        ends = np.append(ends, a.size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    start_lines = np.searchsorted(newlines, starts).astype(np.int64)
    counts = np.bincount(np.searchsorted(ends, seps), minlength=ends.size) + 1
    return start_lines, counts.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64)


def _fields_beyond(record: bytes, delimiter: str, width: int) -> str:
    """The fields of one record after the first ``width``, joined by the delimiter."""
    text = record.decode("utf-8").rstrip("\r")
    fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return delimiter.join(fields[width:])


class QuoteFailure(Exception):
    """A record starting at ``offset`` of a chunk's body (on line ``line`` of the file) opens
    a quoted field that never closes, or holds a field longer than the csv module reads
    (internal: :func:`stream_delimited` turns it into an :class:`InputError`)."""

    def __init__(self, offset: int, line: int, unterminated: bool) -> None:
        super().__init__(f"bad quoting at byte {offset} (line {line})")
        self.offset = offset
        self.line = line
        self.unterminated = unterminated


def _quote_failure(body: bytes, first_line: int, start: int) -> QuoteFailure:
    """The failure of the record that starts ``start`` lines into ``body``."""
    offset = _after_line(body, start)
    return QuoteFailure(offset, first_line + start, body.count(b'"', offset) % 2 == 1)


def _after_line(body: bytes, lines: int) -> int:
    """Offset in ``body`` where its line ``lines`` (0-based) starts."""
    offset = 0
    for _ in range(lines):
        offset = body.index(b"\n", offset) + 1
    return offset


def _parse_lenient(body: bytes, first_line: int, delimiter: str, width: int) -> pl.DataFrame:
    """Parse a chunk polars refused with Python's csv module (lenient quoting).

    A quote that opens a field and never closes would make the rest of the chunk one field
    of one row — every later row lost in it — so a record that runs over several lines to the
    end of the chunk with an odd number of quotes raises :class:`QuoteFailure`, as does a
    field longer than the csv module's limit."""
    text = body.decode("utf-8")
    if csv.field_size_limit() < CSV_FIELD_CHARS:
        csv.field_size_limit(CSV_FIELD_CHARS)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    columns: list[list[str | None]] = [[] for _ in range(width + 1)]
    lines: list[int] = []
    counts: list[int | None] = []
    previous = 0
    total = text.count("\n") + (0 if text.endswith("\n") else 1)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error:
            raise _quote_failure(body, first_line, previous) from None
        start, previous = previous, reader.line_num
        if previous >= total and previous - start > 1:
            failure = _quote_failure(body, first_line, start)
            if failure.unterminated:
                raise failure
        if not record:
            continue
        extra = delimiter.join(record[width:]) if len(record) > width else ""
        for i in range(width):
            value = record[i] if i < len(record) else ""
            columns[i].append(value if value != "" else None)
        columns[width].append(extra or None)
        lines.append(first_line + start)
        counts.append(len(record) if len(record) < width or extra else None)
    frame = pl.DataFrame(
        {name: pl.Series(name, values, dtype=pl.Utf8)
         for name, values in zip(_column_names(width), columns, strict=True)}
    )
    return frame.with_columns(
        pl.Series(LINE, lines, dtype=pl.Int64), pl.Series(FIELDS, counts, dtype=pl.Int32)
    )


def parse_chunk(body: bytes, first_line: int, delimiter: str, width: int
                ) -> tuple[pl.DataFrame, bool]:
    """Rows of one UTF-8 chunk of whole records (no header) as columns ``c0``…``c<width>``
    (the last one holds fields beyond ``width``), :data:`LINE` and :data:`FIELDS`; and whether
    polars read every line as one row of the header's width (then row ``i`` is line
    ``first_line + i``, and any of its lines parses alone to the same row).

    Raises :class:`DecodeFailure` (offset relative to ``body``) for invalid UTF-8.
    """
    names = _column_names(width)
    try:
        frame = pl.read_csv(
            body, has_header=False, schema=dict.fromkeys(names, pl.Utf8),
            missing_columns="insert", truncate_ragged_lines=True, separator=delimiter,
            quote_char='"', raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        bad = utf8_error(body)
        if bad is not None:
            raise DecodeFailure(bad, first_line + body.count(b"\n", 0, bad), "utf-8") from None
        return _parse_lenient(body, first_line, delimiter, width), False
    n = frame.height
    records = body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)
    short = frame[names[width - 1]].null_count() > 0
    long = frame[names[width]].null_count() < n
    if records == n and not (short or long):
        return frame.with_columns(
            pl.int_range(first_line, first_line + n, dtype=pl.Int64).alias(LINE),
            pl.lit(None, pl.Int32).alias(FIELDS),
        ), True
    start_lines, counts, starts, ends = scan_records(body, delimiter)
    if start_lines.size != n:
        return _parse_lenient(body, first_line, delimiter, width), False
    counts_s = pl.Series(FIELDS, counts, dtype=pl.Int32)
    long_rows = frame[names[width]].is_not_null()
    if long:  # polars kept only the first extra field: take them all from the record
        rows = long_rows.arg_true().to_list()
        extra = [_fields_beyond(body[starts[i]:ends[i]], delimiter, width) for i in rows]
        frame = frame.with_columns(frame[names[width]].scatter(rows, extra))
    return frame.with_columns(
        pl.Series(LINE, start_lines + first_line, dtype=pl.Int64),
        pl.when((counts_s < width) | long_rows).then(counts_s).otherwise(None).alias(FIELDS),
    ), False


def _blank_rows(frame: pl.DataFrame, width: int) -> pl.Series:
    """Rows that are blank lines: a single field, empty or only whitespace. Only rows whose
    field count is 1 (or every row of a one-column file) are looked at."""
    single = (pl.repeat(True, frame.height, eager=True) if width == 1
              else frame[FIELDS].eq(1).fill_null(False))
    if not single.any():
        return single
    rows = single.arg_true()
    first = frame[_column_names(width)[0]].gather(rows)
    blank = (first.is_null() | (first.str.strip_chars() == "")).fill_null(True)
    return pl.repeat(False, frame.height, eager=True).scatter(rows, blank)


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced in a worker thread while the caller works on the previous one.

    Transcoding a chunk is Python work that holds the GIL, parsing one is polars work that
    releases it, so on two or more cores the two overlap.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridtopo-read") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _rows(body: bytes, first_line: int, delimiter: str, headers: list[str]
          ) -> tuple[pl.DataFrame, bool]:
    """The rows of one chunk as a :class:`RawChunk` frame — parsed, blank lines dropped,
    columns named by ``headers`` then :data:`EXTRA` — and whether each is one line (see
    :func:`parse_chunk`)."""
    width = len(headers)
    frame, one_per_line = parse_chunk(body, first_line, delimiter, width)
    blank = _blank_rows(frame, width)
    if blank.any():
        frame = frame.filter(~blank)
    names = dict(zip(_column_names(width), [*headers, EXTRA], strict=True))
    return frame.rename(names), one_per_line


def _rereader(transcoder: Transcoder, chunk: Chunk, first_line: int, one_per_line: bool,
              delimiter: str, headers: list[str]) -> Callable[[pl.Series], pl.DataFrame]:
    """How rows of a chunk (whose rows start at ``first_line``) are had again, from the file
    (:meth:`Transcoder.text`): when each row is one line, only those rows' lines are read
    and parsed; otherwise — or should the lines alone not parse as one row each — the whole
    chunk is read and parsed again, the same bytes the same way."""
    encoding, end_line = chunk.encoding, chunk.end_line  # not the chunk: its text must go

    def reread(rows: pl.Series) -> pl.DataFrame:
        if one_per_line:
            lines = [transcoder.text(line, line + 1, encoding)
                     for line in (rows + first_line).to_list()]
            body = b"".join(t if t.endswith(b"\n") else t + b"\n" for t in lines)
            frame, again = _rows(body, first_line, delimiter, headers)
            if again and frame.height == rows.len():
                return frame.with_columns((rows.cast(pl.Int64) + first_line).alias(LINE))
        whole, _ = _rows(transcoder.text(first_line, end_line, encoding), first_line,
                         delimiter, headers)
        return rows_of(whole, rows)

    return reread


def _read(path: Path, transcoder: Transcoder, delimiter: str | None, sink: ChunkSink,
          progress: ProgressCallback | None, label: str) -> tuple[list[str], str, bool, int]:
    """One reading of the file in one encoding, chunk by chunk into ``sink``: (headers,
    delimiter, whether any row had extra fields, rows)."""
    size = path.stat().st_size
    headers: list[str] | None = None
    extra = False
    start = 0
    for chunk in prefetched(transcoder.chunks()):
        body, first_line = chunk.data, chunk.first_line
        if headers is None:
            body, first_line, headers, delimiter = _header(path, chunk, delimiter)
            layout = pl.DataFrame(schema={**dict.fromkeys([*headers, EXTRA], pl.Utf8),
                                          LINE: pl.Int64, FIELDS: pl.Int32})
            sink.begin(RawTable(layout, headers, _format(delimiter), transcoder.encoding))
        assert delimiter is not None
        try:
            frame, one_per_line = _rows(body, first_line, delimiter, headers)
        except DecodeFailure as failure:
            byte = chunk.offset + (len(chunk.data) - len(body)) + failure.offset
            raise DecodeFailure(byte, failure.line, failure.encoding) from None
        except QuoteFailure as failure:
            raise _quoting_error(path, chunk, body, failure) from None
        del body
        extra = extra or frame[EXTRA].null_count() < frame.height
        sink.add(RawChunk(frame, start, _rereader(transcoder, chunk, first_line, one_per_line,
                                                  delimiter, headers)))
        start += frame.height
        del frame
        if progress is not None:
            progress(label, min(chunk.offset + len(chunk.data), size), size)
    if headers is None:
        raise InputError(f"{path}: empty file (no header line)")
    assert delimiter is not None
    return headers, delimiter, extra, start


def _quoting_error(path: Path, chunk: Chunk, body: bytes, failure: QuoteFailure
                   ) -> InputError:
    """The :class:`InputError` for a :class:`QuoteFailure` in ``body`` (the tail of
    ``chunk``), naming the line and the byte offset in the file as it is encoded."""
    at = len(chunk.data) - len(body) + failure.offset
    encoding = "utf-8" if chunk.encoding.startswith("utf") else chunk.encoding
    byte = chunk.offset + len(chunk.data[:at].decode("utf-8").encode(encoding))
    line = body[failure.offset:failure.offset + 200].split(b"\n", 1)[0]
    shown = snippet(line.decode("utf-8", "replace"))
    if failure.unterminated:
        why = ("a quoted field opens on this line and never closes (an unterminated '\"'), "
               "so every later line would be read into it")
    else:
        why = f"a field longer than {csv.field_size_limit():,} characters"
    return InputError(f"{path}: line {failure.line} (byte offset {byte}): {why}; the line "
                      f"starts {shown}. Fix the quoting in the export and run again")


def _format(delimiter: str) -> str:
    return "tsv" if delimiter == "\t" else "csv"


def _header(path: Path, chunk: Chunk, delimiter: str | None
            ) -> tuple[bytes, int, list[str], str]:
    """Split the header line off the first chunk: (rest, its first line, headers, delimiter)."""
    end = chunk.data.find(b"\n")
    line = chunk.data if end < 0 else chunk.data[:end]
    rest = b"" if end < 0 else chunk.data[end + 1:]
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as err:
        raise DecodeFailure(chunk.offset + err.start, chunk.first_line, "utf-8") from None
    if not text.strip():
        raise InputError(f"{path}: the first line is blank; expected a header line")
    delimiter = delimiter or sniff_delimiter(text)
    fields = next(csv.reader([text], delimiter=delimiter))
    return rest, chunk.first_line + 1, unique_headers(fields), delimiter


def stream_delimited(
    path: Path,
    sink: ChunkSink,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: ProgressCallback | None = None,
    label: str | None = None,
) -> RawTable:
    """Read a CSV/TSV file as text rows, chunk by chunk into ``sink``.

    ``encoding`` and ``delimiter`` force what would otherwise be detected. A file detected as
    UTF-8 from its first MiB that turns out not to be is read over as GBK (``sink.begin`` is
    called again). Each chunk's :attr:`RawChunk.reread` reads its rows back from the file.
    Returns the file's :class:`RawTable` without rows: its frame has
    the columns the whole file has (:data:`EXTRA` only when some row had extra fields).
    Raises :class:`InputError` for an empty file, a file that is not text, and bytes that do
    not decode in a forced encoding (naming the byte offset and line). A header-only file
    gives zero rows and a warning.
    """
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    detected = sniff_encoding(path, head, complete=len(head) < SAMPLE_BYTES)
    attempts = [encoding] if encoding else [detected]
    if not encoding and detected == "utf-8":
        attempts.append("gbk")
    label = label or f"read {path.name}"
    for attempt in attempts:
        transcoder = Transcoder(path, attempt, forced=encoding is not None)
        try:
            headers, found, extra, rows = _read(path, transcoder, delimiter, sink, progress,
                                                label)
            break
        except DecodeFailure as failure:
            if encoding:
                raise InputError(
                    f"{path}: cannot be decoded as {transcoder.encoding} (the encoding the "
                    f"profile forces): invalid bytes at byte offset {failure.offset}, line "
                    f"{failure.line}"
                ) from None
            if attempt == attempts[-1]:
                raise not_text(path, f"invalid bytes at byte offset {failure.offset}, line "
                                     f"{failure.line}, are neither UTF-8 nor GB18030") from None
    columns = [*headers, EXTRA] if extra else headers
    layout = pl.DataFrame(schema={**dict.fromkeys(columns, pl.Utf8), LINE: pl.Int64,
                                  FIELDS: pl.Int32})
    raw = RawTable(layout, headers, _format(found), transcoder.encoding,
                   sha256=transcoder.digest.hexdigest())
    if rows == 0:
        raw.warnings.append(f"{path}: has a header but no rows")
    return raw


class _Collected:
    """A :class:`ChunkSink` that keeps every chunk (:func:`read_delimited`)."""

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []

    def begin(self, layout: RawTable) -> None:
        self.frames.clear()

    def add(self, chunk: RawChunk) -> None:
        self.frames.append(chunk.frame)


def read_delimited(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: ProgressCallback | None = None,
    label: str | None = None,
) -> RawTable:
    """Read a CSV/TSV file as text rows, all of them in one frame (arguments and errors as
    for :func:`stream_delimited`)."""
    collected = _Collected()
    raw = stream_delimited(path, collected, encoding=encoding, delimiter=delimiter,
                           progress=progress, label=label)
    frame = pl.concat(collected.frames)
    raw.frame = pl.DataFrame([frame[c] for c in raw.frame.columns])
    return raw
