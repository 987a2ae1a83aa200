"""Text encodings of delimited exports: detection, and transcoding to UTF-8 in large chunks.

Marketing systems export GBK or GB18030, GIS tools UTF-8 with or without a byte-order mark.
:func:`sniff_encoding` decides from the first MiB (strict UTF-8 first, then GBK, then
GB18030, which is a superset of GBK) and refuses what is not text at all. :class:`Transcoder`
then streams the file as UTF-8 chunks of about :data:`CHUNK_BYTES`, each ending at a line break
outside quotes, so polars can parse each chunk on its own: newline (0x0A) and quote (0x22)
bytes never occur inside a GBK/GB18030 character, so splitting the raw bytes is safe. A GBK
file whose later part needs GB18030 is upgraded on the fly; ``Transcoder.encoding`` reports
what was used. UTF-8 chunks are passed through unchanged — polars validates them, and
:func:`utf8_error` locates the offending byte when it does not.

>>> sniff_encoding(Path("x.csv"), "户号,户名\\n".encode("gbk"))
'gbk'
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridtopo.errors import InputError

SAMPLE_BYTES = 1 << 20
"""Bytes sniffed to detect the encoding."""
CHUNK_BYTES = 64 << 20
"""Target size of one transcoded chunk."""
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
    1-based line number it starts on.
    """

    offset: int
    first_line: int
    data: bytes


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

    def _to_utf8(self, raw: bytes, offset: int, first_line: int) -> bytes:
        if self.encoding in ("utf-8", "utf-8-sig"):
            return raw
        try:
            return raw.decode(self.encoding).encode("utf-8")
        except UnicodeDecodeError as err:
            if self.encoding == "gbk" and not self.forced:
                self.encoding = "gb18030"
                return self._to_utf8(raw, offset, first_line)
            line = first_line + raw.count(b"\n", 0, err.start)
            raise DecodeFailure(offset + err.start, line, self.encoding) from None

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
            line = 1
            buf = b""
            while True:
                block = fh.read(self.chunk_bytes)
                self.digest.update(block)
                buf = buf + block if buf else block
                if not block:
                    if buf:
                        yield Chunk(offset, line, self._to_utf8(buf, offset, line))
                    return
                cut = _cut(buf)
                if cut == 0:
                    continue
                raw, buf = buf[:cut], buf[cut:]
                yield Chunk(offset, line, self._to_utf8(raw, offset, line))
                offset += len(raw)
                line += raw.count(b"\n")
