"""Readers for every supported format, behind one entry point, :func:`read_raw`, which hands
the rows to a :class:`~gridtopo.ingest.textrows.ChunkSink`.

* CSV/TSV (``.csv``, ``.tsv``, ``.txt``): :mod:`gridtopo.ingest.delimited`.
* Excel (``.xlsx``, ``.xlsm``, ``.xls``): the profile's sheet, else the first, read with
  fastexcel (calamine) with every cell as text; ``_line`` is the sheet row (header = 1).
* GIS layers (``.geojson``, ``.json``, ``.gpkg``), for distribution tables: attributes as text
  and the geometry, converted from the layer's CRS to WGS 84, as lon/lat (point tables) or WKT
  (edges); ``_line`` is the 1-based feature number.

>>> file_format(Path("edges.gpkg")), file_format(Path("用户档案.xlsx")), file_format(Path("a.doc"))
('gpkg', 'xlsx', None)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import fastexcel
import numpy as np
import polars as pl
import pyogrio
import shapely

from gridtopo.errors import InputError
from gridtopo.ingest.crs import geometries_to_wgs84
from gridtopo.ingest.delimited import stream_delimited
from gridtopo.ingest.encoding import not_text
from gridtopo.ingest.limits import Limits
from gridtopo.ingest.profile import TableProfile
from gridtopo.ingest.tables import Table
from gridtopo.ingest.textrows import (
    FIELDS,
    LINE,
    ChunkSink,
    RawChunk,
    RawTable,
    rows_of,
    sha256_of,
    unique_headers,
)
from gridtopo.progress import ProgressCallback

FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xlsx",
    ".geojson": "geojson", ".json": "geojson",
    ".gpkg": "gpkg",
}
"""File suffix → reader (``csv`` covers TSV; the delimiter is detected)."""
LAYER_FORMATS = ("geojson", "gpkg")

LON_COLUMN = "lon (geometry)"
LAT_COLUMN = "lat (geometry)"
WKT_COLUMN = "geometry (WKT)"


def file_format(path: Path) -> str | None:
    """The reader for ``path`` by its suffix, or None when ingest does not read it."""
    return FORMATS.get(path.suffix.lower())


def _blank_rows(columns: list[str]) -> pl.Expr:
    return pl.all_horizontal([pl.col(c).is_null() for c in columns])


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as stripped text, empty → null."""
    return frame.select(
        pl.col(c).cast(pl.Utf8).str.strip_chars().replace("", None).alias(c)
        for c in frame.columns
    )


def check_unpacked_size(path: Path, limit: int) -> None:
    """Refuse a workbook whose zip members declare more than ``limit`` bytes unpacked (a
    "zip bomb": a few MB that expand to gigabytes of sheet XML), from the zip directory alone;
    a member that unpacks to more than it declares fails its CRC check before it can."""
    try:
        with zipfile.ZipFile(path) as book:
            unpacked = sum(member.file_size for member in book.infolist())
    except zipfile.BadZipFile:
        return  # an old .xls, or not a workbook at all: read_excel says which
    if unpacked > limit:
        raise InputError(f"{path}: unpacks to {unpacked:,} bytes, more than the xlsx_bytes "
                         f"limit ({limit:,}); refused before reading (raise it with [limits] "
                         "xlsx_bytes = N in a profile if the workbook is genuine)")


def read_excel(path: Path, sheet: str | int | None) -> RawTable:
    """Read one sheet of a workbook as text rows (``sheet``: name or 1-based number)."""
    try:
        book = fastexcel.read_excel(path)
    except Exception as err:  # fastexcel raises its own hierarchy, not exported stably
        raise InputError(f"{path}: not a readable Excel workbook ({err})") from None
    names = book.sheet_names
    if sheet is None:
        index = 0
    elif isinstance(sheet, int):
        if not 1 <= sheet <= len(names):
            raise InputError(f"{path}: has no sheet number {sheet} (it has {len(names)}: "
                             f"{', '.join(names)})")
        index = sheet - 1
    elif sheet in names:
        index = names.index(sheet)
    else:
        raise InputError(f"{path}: has no sheet {sheet!r} (its sheets: {', '.join(names)})")
    cells = _text(book.load_sheet(index, header_row=None, dtypes="string").to_polars())
    if cells.height == 0:
        raise InputError(f"{path}: sheet {names[index]!r} is empty (no header row)")
    headers = unique_headers(list(cells.row(0)))
    frame = cells.slice(1).rename(dict(zip(cells.columns, headers, strict=True)))
    frame = frame.with_columns(
        pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(LINE),
        pl.lit(None, pl.Int32).alias(FIELDS),
    ).filter(~_blank_rows(headers))
    raw = RawTable(frame, headers, "xlsx", None, unit="row", sha256=sha256_of(path))
    if frame.height == 0:
        raw.warnings.append(f"{path}: sheet {names[index]!r} has a header but no rows")
    return raw


def _layer_name(path: Path, table: Table, layer: str | None) -> str | None:
    """The layer to read: the profile's, else the only one, else the one named like the
    table (or one of its file names), else the first."""
    layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    if layer is not None:
        if layer not in layers:
            raise InputError(f"{path}: has no layer {layer!r} (its layers: "
                             f"{', '.join(layers)})")
        return layer
    if len(layers) <= 1:
        return None
    wanted = {n.casefold() for n in table.file_names}
    return next((name for name in layers if name.casefold() in wanted), layers[0])


def read_layer(path: Path, table: Table, layer: str | None = None) -> RawTable:
    """Read a GeoJSON/GeoPackage layer of a distribution table as text rows, its geometry
    converted to WGS 84 lon/lat (points) or WKT (lines)."""
    if table.geometry is None:
        raise InputError(f"{path}: {table.name} has no geometry; read it from CSV or xlsx")
    try:
        meta, arrow = pyogrio.read_arrow(path, layer=_layer_name(path, table, layer))
    except pyogrio.errors.DataSourceError as err:
        raise not_text(path, f"not a readable GIS layer: {err}") from None
    geometry_name = meta.get("geometry_name") or "wkb_geometry"
    attributes = pl.from_arrow(arrow.drop_columns([geometry_name]))
    assert isinstance(attributes, pl.DataFrame)
    headers = unique_headers(attributes.columns)
    frame = _text(attributes.rename(dict(zip(attributes.columns, headers, strict=True))))
    wkb = arrow.column(geometry_name).to_numpy(zero_copy_only=False)
    geoms = geometries_to_wgs84(shapely.from_wkb(wkb), meta.get("crs"))
    warnings: list[str] = []
    if table.geometry == "point":
        is_point = shapely.get_type_id(geoms) == 0
        x = np.where(is_point, shapely.get_x(geoms), np.nan)
        y = np.where(is_point, shapely.get_y(geoms), np.nan)
        others = int((~is_point & ~shapely.is_missing(geoms)).sum())
        if others:
            warnings.append(f"{path}: {others} features are not points; their lon/lat are "
                            "left blank")
        derived = {LON_COLUMN: x, LAT_COLUMN: y}
        fixed = {"lon": LON_COLUMN, "lat": LAT_COLUMN}
        frame = frame.with_columns(
            pl.Series(name, values).fill_nan(None).cast(pl.Utf8).alias(name)
            for name, values in derived.items()
        )
    else:
        wkt = shapely.to_wkt(geoms, rounding_precision=-1, output_dimension=2)
        frame = frame.with_columns(pl.Series(WKT_COLUMN, wkt, dtype=pl.Utf8))
        fixed = {"geometry": WKT_COLUMN}
    frame = frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(LINE),
        pl.lit(None, pl.Int32).alias(FIELDS),
    )
    fmt = "gpkg" if path.suffix.lower() == ".gpkg" else "geojson"
    raw = RawTable(frame, [*headers, *fixed.values()], fmt, None, unit="feature",
                   fixed=fixed, warnings=warnings, sha256=sha256_of(path))
    if frame.height == 0:
        raw.warnings.append(f"{path}: the layer has no features")
    return raw


def read_raw(path: Path, table: Table, sink: ChunkSink, settings: TableProfile | None = None,
             progress: ProgressCallback | None = None, label: str | None = None,
             limits: Limits | None = None) -> RawTable:
    """Read ``path`` as rows of ``table`` with the reader its suffix calls for, delivering
    them to ``sink``: a CSV/TSV chunk by chunk, a workbook sheet or a layer, which are small,
    in one chunk whose :attr:`RawChunk.reread` keeps it in memory.
    Returns the file's :class:`RawTable` without rows (what
    :func:`~gridtopo.ingest.delimited.stream_delimited` returns). A file larger than
    ``limits.file_bytes``, or a workbook that unpacks to more than ``limits.xlsx_bytes``, is
    refused before it is parsed."""
    settings = settings or TableProfile()
    limits = limits or Limits()
    fmt = file_format(path)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    if size > limits.file_bytes:
        raise InputError(f"{path}: {size:,} bytes, larger than the file_bytes limit "
                         f"({limits.file_bytes:,}; raise it with [limits] file_bytes = N in a "
                         "profile)")
    if fmt == "xlsx":
        check_unpacked_size(path, limits.xlsx_bytes)
    if fmt not in ("xlsx", *LAYER_FORMATS):
        return stream_delimited(path, sink, encoding=settings.encoding,
                                delimiter=settings.delimiter, progress=progress, label=label)
    raw = read_excel(path, settings.sheet) if fmt == "xlsx" else read_layer(
        path, table, settings.layer)
    frame, raw.frame = raw.frame, raw.frame.clear()
    sink.begin(raw)
    sink.add(RawChunk(frame, 0, lambda rows: rows_of(frame, rows)))
    return raw
