"""Find each canonical table's export file(s) under a source directory.

A file belongs to a table when its name (without suffix) is one of the table's file names
(:attr:`gridtopo.ingest.tables.Table.file_names`: ``customers``, ``用户档案``, ``配变``…) as a
whole word: compared case- and width-insensitively, the name may carry other words around it
that are not letters-adjacent — ``customers_part1``, ``2024-12_edges``, ``用户档案(2)`` all count,
``customersx`` does not. The longest matching name wins (``transformer_areas`` over
``transformer``). A GeoPackage whose name matches no table contributes each layer whose name
does. Several files of one table are all read, in path order.

Files gridtopo writes itself (``customer_links.csv``, ``unlinked.csv``), directories named
``truth`` (the synthetic generator's answers) and ``deletions`` (the key lists of a change file,
:mod:`gridtopo.pipeline.changes`), hidden files and
directories and Office lock files (``~$…``) are skipped. A profile's ``file`` for a table
replaces discovery for that table.

Only regular files inside the source directory are read: an input that is a link resolving
outside it, or not a regular file (a FIFO, a device), refuses the run naming the link — never
quoting what it points at — and so does a profile ``file`` pattern that leads out of it
(``../../…`` or an absolute path elsewhere).
"""

from __future__ import annotations

import glob
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pyogrio

from gridtopo.errors import InputError
from gridtopo.ingest.formats import LAYER_FORMATS, file_format
from gridtopo.ingest.profile import Profile
from gridtopo.ingest.tables import TABLES

SKIPPED_DIRECTORIES = ("truth", "deletions")
GRIDTOPO_OUTPUTS = ("customer_links", "unlinked")
"""Stems of files gridtopo itself writes next to exported tables (``gridtopo export csv``,
``ingest --unlinked``): never inputs, although ``customer_links`` contains a table's word."""


@dataclass(frozen=True)
class Found:
    """One input of a table: a file, and for a GeoPackage maybe the layer to read."""

    table: str
    path: Path
    layer: str | None = None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _word_at(name: str, word: str) -> bool:
    """True when ``word`` occurs in ``name`` not directly between letters."""
    start = name.find(word)
    while start >= 0:
        end = start + len(word)
        before_ok = start == 0 or not name[start - 1].isalpha()
        after_ok = end == len(name) or not name[end].isalpha()
        if before_ok and after_ok:
            return True
        start = name.find(word, start + 1)
    return False


def classify(name: str) -> str | None:
    """The table a file or layer name stands for, or None.

    >>> classify("customers_part1"), classify("台区档案_202412"), classify("transformer_areas")
    ('customers', 'transformer_areas', 'transformer_areas')
    >>> classify("线路设备"), classify("customersx"), classify("customer_links")
    ('edges', None, None)
    """
    folded = _fold(name)
    if folded in GRIDTOPO_OUTPUTS:
        return None
    best: tuple[int, str] | None = None
    for table in TABLES.values():
        for file_name in table.file_names:
            word = _fold(file_name)
            if (best is None or len(word) > best[0]) and _word_at(folded, word):
                best = (len(word), table.name)
    return best[1] if best else None


def _walk(source: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and d.casefold() not in SKIPPED_DIRECTORIES)
        files.extend(Path(root) / n for n in sorted(names)
                     if not n.startswith((".", "~$")))
    return files


def confined(source: Path, path: Path, what: str) -> Path:
    """``path`` when it is a regular file inside ``source`` (links resolved); else
    :class:`InputError` naming ``what`` (how the path was given), not the link's target."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"{what}: cannot be resolved (a dangling or looping link?); "
                         "refused") from None
    if not resolved.is_relative_to(source.resolve()):
        raise InputError(f"{what}: leads outside the source folder {source} (a link, or "
                         "'..' in a path); refused — only files inside the folder are read, "
                         "copy the file in if it belongs to the export")
    if not stat.S_ISREG(resolved.stat().st_mode):
        raise InputError(f"{what}: is not a regular file (a FIFO, device or socket); refused")
    return path


def _profile_files(source: Path, profile: Profile) -> dict[str, list[Found]]:
    found: dict[str, list[Found]] = {}
    for name, settings in profile.tables.items():
        if settings.file is None:
            continue
        pattern = settings.file
        absolute = Path(pattern).is_absolute()
        if glob.has_magic(pattern):
            matches = (sorted(Path(p) for p in glob.glob(pattern, recursive=True)) if absolute
                       else sorted(source.glob(pattern)))
            outside = [p for p in matches if not p.resolve().is_relative_to(source.resolve())]
            if outside:
                confined(source, outside[0], f"{profile.path}: [{name}] file = {pattern!r}")
            matches = [p for p in matches if p.is_file()]
            if not matches:
                raise InputError(f"{profile.path}: [{name}] file = {pattern!r} matches no file"
                                 f" under {source}")
        else:
            path = Path(pattern) if absolute else source / pattern
            if path.exists():
                confined(source, path, f"{profile.path}: [{name}] file = {pattern!r}")
            if not path.is_file():
                raise InputError(f"{profile.path}: [{name}] file = {pattern!r}: {path} does "
                                 "not exist")
            matches = [path]
        found[name] = [Found(name, confined(source, p, f"{profile.path}: [{name}] file = "
                                                    f"{pattern!r}: {p.name}"), settings.layer)
                       for p in matches]
    return found


def discover(source: Path, profile: Profile | None = None) -> tuple[dict[str, list[Found]],
                                                                    list[str]]:
    """Inputs per table under ``source`` (tables with none are absent) and warnings.

    Raises :class:`InputError` when ``source`` is not a directory, when a profile's ``file``
    matches nothing, and when no table has any input.
    """
    if not source.exists():
        raise InputError(f"source directory {source} does not exist")
    if not source.is_dir():
        raise InputError(f"source {source} is not a directory")
    found = _profile_files(source, profile) if profile else {}
    claimed = {f.path.resolve() for inputs in found.values() for f in inputs}
    warnings: list[str] = []
    for path in _walk(source):
        fmt = file_format(path)
        if fmt is None or path.resolve() in claimed:
            continue
        confined(source, path, str(path))
        table = classify(path.stem)
        inputs: list[Found] = []
        if table is not None:
            inputs = [Found(table, path)]
        elif fmt == "gpkg":
            try:
                layers = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
            except pyogrio.errors.DataSourceError:
                layers = []
            inputs = [Found(t, path, layer) for layer in layers if (t := classify(layer))]
        for item in inputs:
            if profile and profile.table(item.table).file:
                continue
            if fmt in LAYER_FORMATS and TABLES[item.table].geometry is None:
                warnings.append(f"{path}: {item.table} has no geometry, so only CSV/TSV/xlsx "
                                "files of it are read; this file is ignored")
                continue
            if fmt in LAYER_FORMATS and TABLES[item.table].system == "marketing":
                warnings.append(f"{path}: GeoJSON/GeoPackage is read for distribution tables "
                                f"only, not {item.table}; this file is ignored")
                continue
            found.setdefault(item.table, []).append(item)
    if not found:
        names = ", ".join(
            f"{t.file_names[0]} / {next(n for n in t.file_names if not n.isascii())}"
            for t in TABLES.values()
        )
        raise InputError(f"{source}: no recognisable export file found (looked for CSV, TSV, "
                         f"xlsx, GeoJSON or GeoPackage files named like {names})")
    for spec in TABLES.values():
        if spec.name not in found:
            warnings.append(f"no file found for {spec.name} (file names looked for: "
                            f"{', '.join(spec.file_names)})")
    return {name: found[name] for name in TABLES if name in found}, warnings
