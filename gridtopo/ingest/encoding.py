"""Text encodings of delimited exports: detection, and transcoding to UTF-8 in large chunks.

Marketing systems export GBK or GB18030, GIS tools UTF-8 with or without a byte-order mark.
:func:`sniff_encoding` decides from the first MiB (strict UTF-8 first, then GBK, then
GB18030, which is a superset of GBK) and refuses what is not text at all. :class:`Transcoder`
then streams the file as UTF-8 chunks of about :data:`CHUNK_BYTES`, each ending at a line break
outside quotes, so polars can parse each chunk on its own: newline (0x0A) and quote (0x22)
bytes never occur inside a GBK/GB18030 character, so splitting the raw bytes is safe. A GBK
file whose later part needs GB18030 is upgraded on the fly; ``Transcoder.encoding`` reports
what was used. UTF-8 chunks are passed through unchanged — polars validates them, and
:func:`utf8_error` locates the offending byte when it does not. While streaming, the
transcoder notes where a line starts about every :data:`MARK_BYTES`, so that
:meth:`Transcoder.text` can read a few lines back later without reading the file again.

>>> sniff_encoding(Path("x.csv"), "户号,户名\\n".encode("gbk"))
'gbk'
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridtopo.errors import InputError

SAMPLE_BYTES = 1 << 20
"""Bytes sniffed to detect the encoding."""
CHUNK_BYTES = 24 << 20
"""Target size of one transcoded chunk. Each chunk is converted and checked on its own at a
fixed cost of about 45 ms, so chunks should not be small; but while a chunk's UTF-8 text stays
under glibc's largest mmap threshold (32 MiB) its buffers reuse memory the previous chunk
freed instead of faulting in fresh pages: against 64 MiB chunks this halves a read's page
faults and system time (measured on 3 million customers) and keeps less memory in flight."""
PIECE_BYTES = 1 << 20
"""Bytes converted to UTF-8 in one call (see :meth:`Transcoder._to_utf8`)."""
MARK_BYTES = 64 << 10
"""About how far apart the line starts :meth:`Transcoder.text` can seek to are."""
_MAX_QUOTE_BACKTRACK = 1000
"""Lines a chunk end may move back to leave a quoted field closed before giving up."""

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a zip archive (an .xlsx renamed?)",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Office file (.xls/.doc)",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "an SQLite database (a GeoPackage renamed?)",
    b"\x1f\x8b": "a gzip archive",
}
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13))


class DecodeFailure(Exception):
    """Bytes at ``offset`` (line ``line``) are not valid ``encoding`` (internal: callers turn
    it into a retry with another encoding or an :class:`InputError`)."""

    def __init__(self, offset: int, line: int, encoding: str) -> None:
        super().__init__(f"not valid {encoding} at byte {offset} (line {line})")
        self.offset = offset
        self.line = line
        self.encoding = encoding


def not_text(path: Path, why: str) -> InputError:
    """The error for a file that is not a text/CSV file at all."""
    return InputError(f"{path}: not a text/CSV file ({why})")


def _decodes(data: bytes, encoding: str, final: bool) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(data, final)
    except UnicodeDecodeError:
        return False
    return True


def sniff_encoding(path: Path, head: bytes, *, complete: bool = False) -> str:
    """Encoding of a file from its first bytes ``head`` (``complete`` if that is the whole
    file): ``utf-8-sig``, ``utf-8``, ``gbk`` or ``gb18030``. Raises :class:`InputError` for an
    empty file and for anything that is not text (binary magic numbers, NUL or other control
    bytes, UTF-16, bytes no Chinese encoding accepts)."""
    if not head:
        raise InputError(f"{path}: empty file (0 bytes)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: UTF-16 text is not supported; save it as UTF-8 or GBK")
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise not_text(path, f"it looks like {what}")
    if b"\x00" in head:
        raise not_text(path, "it contains NUL bytes")
    controls = sum(head.count(c) for c in _CONTROL)
    if controls > max(8, len(head) // 100):
        raise not_text(path, "it is full of control bytes")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gbk", "gb18030"):
        if _decodes(head, encoding, complete):
            return encoding
    raise not_text(path, "its bytes are neither UTF-8 nor GBK/GB18030")


def utf8_error(data: bytes) -> int | None:
    """Offset of the first byte of ``data`` that is not valid UTF-8, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start
    return None


@dataclass(frozen=True)
class Chunk:
    """A run of whole lines of the file, as UTF-8.

    ``offset`` is the byte offset of its first raw byte in the file and ``first_line`` the
    1-based line number it starts on; ``end_line`` is the line after it (None when it ends
    the file without a final line break). ``encoding`` is what its bytes were decoded with.
    """

    offset: int
    first_line: int
    data: bytes
    encoding: str
    end_line: int | None


def _after_lines(data: bytes, lines: int, start: int = 0) -> int:
    """Position in ``data`` just after the ``lines``-th line break from ``start``."""
    for _ in range(lines):
        start = data.index(b"\n", start) + 1
    return start


def _cut(buf: bytes) -> int:
    """End (exclusive) of the longest prefix of ``buf`` that ends with a newline outside
    quotes; 0 when ``buf`` has no newline. A stray quote that never closes is given up on
    after :data:`_MAX_QUOTE_BACKTRACK` lines (the chunk's parser then deals with it)."""
    last = buf.rfind(b"\n") + 1
    if last == 0 or b'"' not in buf:
        return last
    cut = last
    quotes = buf.count(b'"', 0, cut)
    for _ in range(_MAX_QUOTE_BACKTRACK):
        if quotes % 2 == 0:
            return cut
        prev = buf.rfind(b"\n", 0, cut - 1) + 1
        if prev == 0:
            break
        quotes -= buf.count(b'"', prev, cut)
        cut = prev
    return cut if quotes % 2 == 0 else last


class Transcoder:
    """Stream a file as UTF-8 :class:`Chunk` s (see the module docstring).

    ``encoding`` is the encoding being used; it changes from ``gbk`` to ``gb18030`` when a
    later chunk needs it. ``forced`` (an encoding a profile names) is never changed.
    ``digest`` is the SHA-256 of the bytes read so far (of the whole file once streamed).
    """

    def __init__(self, path: Path, encoding: str, *, forced: bool = False,
                 chunk_bytes: int | None = None) -> None:
        self.path = path
        self.encoding = codecs.lookup(encoding).name
        self.forced = forced
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.digest = hashlib.sha256()
        self._mark_lines = array("q")  # line starts (line number, byte offset) for text()
        self._mark_offsets = array("q")

    def _to_utf8(self, data: bytes, end: int, offset: int, first_line: int) -> bytes:
        """``data[:end]`` as UTF-8, converted :data:`PIECE_BYTES` at a time: each piece is one
        C call that holds the GIL, so the thread parsing the previous chunk is never kept
        waiting long."""
        if self.encoding in ("utf-8", "utf-8-sig"):
            return data if end == len(data) else data[:end]
        start = 0
        pieces = []
        try:
            while start < end:
                stop = end
                if start + PIECE_BYTES < end:  # a line break near the piece size, else the next
                    stop = (data.rfind(b"\n", start, start + PIECE_BYTES) + 1
                            or data.find(b"\n", start + PIECE_BYTES, end) + 1 or end)
                pieces.append(codecs.decode(memoryview(data)[start:stop], self.encoding)
                              .encode("utf-8"))
                start = stop
        except UnicodeDecodeError as err:
            if self.encoding == "gbk" and not self.forced:
                self.encoding = "gb18030"
                return self._to_utf8(data, end, offset, first_line)
            bad = start + err.start
            line = first_line + data.count(b"\n", 0, bad)
            raise DecodeFailure(offset + bad, line, self.encoding) from None
        return b"".join(pieces)

    def _count_lines(self, buf: bytes, end: int, offset: int, line: int) -> int:
        """Line breaks in ``buf[:end]`` (which starts at ``offset``, on ``line``), noting a line
        start about every :data:`MARK_BYTES` for :meth:`text`."""
        pos = counted = 0
        while (stop := buf.find(b"\n", pos + MARK_BYTES, end)) >= 0:
            counted += buf.count(b"\n", pos, stop + 1)
            pos = stop + 1
            self._mark_lines.append(line + counted)
            self._mark_offsets.append(offset + pos)
        return counted + buf.count(b"\n", pos, end)

    def chunks(self) -> Iterator[Chunk]:
        """The file's content after any byte-order mark, as UTF-8 chunks of whole lines."""
        with self.path.open("rb") as fh:
            offset = 0
            if self.encoding == "utf-8-sig":
                bom = fh.read(len(codecs.BOM_UTF8))
                if bom != codecs.BOM_UTF8:
                    fh.seek(0)
                else:
                    self.digest.update(bom)
                    offset = len(bom)
            self._mark_lines = array("q", [1])
            self._mark_offsets = array("q", [offset])
            line = 1
            buf = b""
            while True:
                block = fh.read(self.chunk_bytes)
                self.digest.update(block)
                buf = buf + block if buf else block
                if not block:
                    if buf:
                        data = self._to_utf8(buf, len(buf), offset, line)
                        self._count_lines(buf, len(buf), offset, line)
                        yield Chunk(offset, line, data, self.encoding, None)
                    return
                cut = _cut(buf)
                if cut == 0:
                    continue
                data = self._to_utf8(buf, cut, offset, line)
                lines = self._count_lines(buf, cut, offset, line)
                yield Chunk(offset, line, data, self.encoding, line + lines)
                del data
                offset += cut
                line += lines
                buf = buf[cut:]

    def text(self, first: int, end: int | None, encoding: str) -> bytes:
        """Lines ``first`` up to ``end`` (exclusive; None: to the end of the file) as UTF-8,
        read again from the file after :meth:`chunks` has streamed it and decoded with
        ``encoding`` (the :attr:`Chunk.encoding` of the chunk they are in)."""
        lines, offsets = self._mark_lines, self._mark_offsets
        i = bisect.bisect_right(lines, first) - 1
        j = len(lines) if end is None else bisect.bisect_left(lines, end)
        with self.path.open("rb") as fh:
            fh.seek(offsets[i])
            data = fh.read() if j == len(lines) else fh.read(offsets[j] - offsets[i])
        start = _after_lines(data, first - lines[i])
        stop = len(data)
        if end is not None:
            k = bisect.bisect_right(lines, end) - 1
            stop = _after_lines(data, end - lines[k], offsets[k] - offsets[i])
        if encoding in ("utf-8", "utf-8-sig"):
            return data[start:stop]
        return codecs.decode(memoryview(data)[start:stop], encoding).encode("utf-8")
