"""Output files of exports: refuse to clobber, write under a temporary name, rename when done.

Every export writes each file as ``.<name>.partial`` next to its final path and renames it into
place only once it is complete, so an interrupted export (a full disk, a killed process) never
leaves a half-written file under the final name. Existing outputs are refused unless the user
asked to overwrite them — checked for every file *before* anything is written.

>>> with atomic_path(Path("out/model.txt")) as partial:
...     _ = partial.write_text("the whole export")     # renamed to out/model.txt on success
>>> sorted(p.name for p in Path("out").iterdir())
['model.txt']
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from gridtopo.errors import OutputExistsError


def refuse_existing(paths: Iterable[Path], overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` for the first of ``paths`` that exists, unless
    ``overwrite``."""
    if overwrite:
        return
    for path in paths:
        if path.exists():
            raise OutputExistsError(f"{path} already exists: pass --overwrite to replace it")


def partial_path(final: Path) -> Path:
    """The temporary name ``final`` is written under: hidden, in the same directory (so the
    rename is atomic), keeping the suffix (GDAL drivers look at it)."""
    return final.with_name(f".{final.stem}.partial{final.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield the temporary path to write ``final`` under; rename it to ``final`` on success,
    delete it on any error (the error propagates)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(final)
    _remove(partial)
    try:
        yield partial
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(partial, final)
    finally:
        if partial.exists():
            _remove(partial)


@contextmanager
def atomic_open(final: Path, mode: str = "wb", **kwargs: object) -> Iterator[IO]:  # type: ignore[type-arg]
    """:func:`open` ``final``'s temporary path; closed, then renamed, when the block ends."""
    with atomic_path(final) as partial, partial.open(mode, **kwargs) as handle:  # type: ignore[call-overload]
        yield handle
