"""Headless chromium for the page tests, and reading its PNG screenshots without Pillow.

:func:`chromium` runs the browser with a throw-away profile and no network of its own
(skipped when chromium is missing, failed under CI); :func:`png_rgb` decodes an 8-bit,
non-interlaced RGB or RGBA PNG (what chromium writes) with zlib, and :func:`count_colour`
counts the pixels of one colour in it (in a box: :func:`colour_box`).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def chromium(*args: str, window: str = "1400,2000") -> subprocess.CompletedProcess[str]:
    """Run headless chromium with a throw-away profile; skip (fail under CI) when missing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        reason = "chromium is not installed (scripts/setup-system.sh installs it)"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true: the browser test must run")
        pytest.skip(reason)
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", f"--window-size={window}", *args],
            capture_output=True, text=True, timeout=60, check=True)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_rgb(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit non-interlaced RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, bytearray(), b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunk = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    previous = bytearray(stride)
    rows: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((x + p) & 0xFF for x, p in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                corner = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, previous[i], corner)) & 0xFF
        previous = line
        rows.append(bytes(line))
    if bpp == 4:
        pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 4)
        rows = [row[:, :3].tobytes() for row in pixels]
    return width, height, rows


def _pixels(path: Path) -> np.ndarray:
    """The screenshot as a (height, width, 3) int16 array."""
    width, height, rows = png_rgb(path)
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 3) \
        .astype(np.int16)


def _matches(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int) -> np.ndarray:
    return np.asarray((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=2))


def colour_box(path: Path, rgb: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels of colour ``rgb``, None when there are none."""
    ys, xs = np.nonzero(_matches(_pixels(path), rgb, 0))
    if not xs.size:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def count_colour(path: Path, rgb: tuple[int, int, int], tolerance: int = 0,
                 within: tuple[int, int, int, int] | None = None) -> int:
    """Pixels of the screenshot ``path`` within ``tolerance`` of ``rgb`` in every channel,
    inside the box ``within`` (left, top, right, bottom) when given."""
    pixels = _pixels(path)
    if within is not None:
        left, top, right, bottom = within
        pixels = pixels[max(top, 0):bottom, max(left, 0):right]
    return int(_matches(pixels, rgb, tolerance).sum())
