"""GeoPackage and GeoJSON exports for GIS tools (QGIS, ArcGIS, web maps).

Layers, all in WGS 84 (EPSG:4326):

=============  ============  ==============================================================
layer          geometry      fields
=============  ============  ==============================================================
stations       Point         station_id, station_name, voltage_kv, in_service
feeders        none          feeder_id, feeder_name, station_id, voltage_kv, source_node,
                             in_service — a feeder is drawn by its edges (dissolve ``edges``
                             on ``feeder_id``); building a multiline per feeder would cost a
                             second pass over every edge for what any GIS does on demand
edges          LineString    edge_id, kind, feeder_id, from_node, to_node, normal_open,
                             in_service, length_m
transformers   Point         transformer_id, transformer_name, feeder_id, node, capacity_kva,
                             marketing_area_code, status, updated_at
customers      Point         only with ``customers=True``: the customer fields, the reconciled
                             ``transformer_id``, and name/address/phone masked unless
                             ``personal=True``
=============  ============  ==============================================================

The GeoPackage also holds each layer's default QGIS style (``layer_styles``,
:mod:`gridtopo.exports.styles`: feeders coloured, switches symbolised by state). It is one file
with these layers, each written by pyogrio from a stream of Arrow
batches, one per chunk of rows (memory stays flat); GeoJSON is one ``<layer>.geojson``
FeatureCollection per layer in a directory, written as a stream, its text properties quoted
where a spreadsheet would run them as formulas (:mod:`gridtopo.exports.formulas`). Both are
written under temporary names and renamed when complete.

Spatial index: GDAL would build each layer's GeoPackage R*Tree in memory as the features
arrive (about 40 MB per million features: half a gigabyte more peak memory for Guangdong's
14 million customers), so layers are created without it (``SPATIAL_INDEX=NO``) and
:func:`add_spatial_indexes` then builds the same index — the ``rtree_<table>_<column>``
virtual table, its triggers and its ``gpkg_extensions`` row, as GDAL writes them — with one
``INSERT … SELECT`` per layer inside SQLite, whose memory is its page cache whatever the
number of features. QGIS and GDAL use it as their own. The price is time: SQLite inserts
about 4 µs per feature (a minute for Guangdong's customers), where GDAL's bulk build ran in a
thread beside the writes.

>>> from gridtopo.db.read.scope import Scope
>>> export_gpkg(engine, Path("model.gpkg"), Scope(feeders=("XL-000002",)))
{'stations': 1, 'feeders': 1, 'edges': 24, 'transformers': 10}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl
import pyarrow as pa
import pyogrio
import shapely
from sqlalchemy import Connection, Engine, Select

from gridtopo.db.engine import load_spatialite, sqlite_dbapi
from gridtopo.db.read.scope import Scope, View, open_view
from gridtopo.exports import layers
from gridtopo.exports.files import atomic_open, atomic_path, refuse_existing
from gridtopo.exports.formulas import neutralise_formulas
from gridtopo.exports.layers import Geometry, Schema
from gridtopo.exports.styles import add_layer_styles
from gridtopo.privacy import mask_frame
from gridtopo.progress import ProgressCallback

CRS = "EPSG:4326"


def geo_layers(
    view: View, customers: bool = False
) -> dict[str, tuple[Select[Any], Schema, str | None]]:
    """Per layer: its query (geometry as WKB ``geometry``), schema and geometry type."""
    wkb: Geometry = "wkb"
    plan: dict[str, tuple[Select[Any], Schema, str | None]] = {
        "stations": (layers.stations(view, wkb),
                     layers.with_geometry(layers.STATION_SCHEMA, wkb), "Point"),
        "feeders": (layers.feeders(view), layers.FEEDER_SCHEMA, None),
        "edges": (layers.edges(view, wkb), layers.with_geometry(layers.EDGE_SCHEMA, wkb),
                  "LineString"),
        "transformers": (layers.transformers(view, wkb),
                         layers.with_geometry(layers.TRANSFORMER_SCHEMA, wkb), "Point"),
    }
    if customers:
        schema = {**layers.CUSTOMER_SCHEMA, "geometry": pl.Binary, "transformer_id": pl.Utf8}
        plan["customers"] = (layers.customers(view, wkb, chain=True), schema, "Point")
    return plan


def _frames(
    conn: Connection, name: str, query: Select[Any], schema: Schema, personal: bool,
    progress: ProgressCallback | None,
) -> Iterator[pl.DataFrame]:
    for frame in layers.iter_frames(conn, query, schema, stage=f"export {name}",
                                    progress=progress):
        yield frame if personal else mask_frame(frame)


def export_gpkg(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    customers: bool = False,
    personal: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the model's layers into one GeoPackage at ``path``; return features per layer.

    Each layer is one pyogrio write fed by a stream of Arrow batches (one per chunk), so the
    file stays open while the rows flow; the spatial indexes are built afterwards in SQL
    (:func:`add_spatial_indexes`), in memory that does not grow with the model.
    """
    refuse_existing([path], overwrite)
    counts: dict[str, int] = {}
    with engine.connect() as conn, atomic_path(path) as partial:
        view = open_view(conn, scope)
        for name, (query, schema, geometry_type) in geo_layers(view, customers).items():
            counts[name] = 0

            def batches(name: str = name, query: Select[Any] = query,
                        schema: Schema = schema) -> Iterator[pa.RecordBatch]:
                for frame in _frames(conn, name, query, schema, personal, progress):
                    counts[name] += frame.height
                    yield from frame.to_arrow().to_batches()

            arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
            kwargs: dict[str, Any] = {
                "geometry_name": "geometry", "geometry_type": geometry_type, "crs": CRS,
                "layer_options": {"SPATIAL_INDEX": "NO"},
            } if geometry_type else {}
            pyogrio.write_arrow(pa.RecordBatchReader.from_batches(arrow_schema, batches()),
                                partial, layer=name, driver="GPKG", append=partial.exists(),
                                **kwargs)
        add_spatial_indexes(partial, progress)
        add_layer_styles(partial, list(counts))
    return counts


RTREE_EXTENSION = ("gpkg_rtree_index", "http://www.geopackage.org/spec120/#extension_rtree",
                   "write-only")
"""The ``gpkg_extensions`` row of a layer's R*Tree (name, definition, scope), as GDAL writes it."""

_EXTENSIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT,column_name TEXT,"
    "extension_name TEXT NOT NULL,definition TEXT NOT NULL,scope TEXT NOT NULL,"
    "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
)
"""``gpkg_extensions`` as the GeoPackage specification defines it (GDAL creates it only with
the first extension, so a file whose layers have no index yet lacks it)."""

_BOUNDS = 'ST_MinX({g}), ST_MaxX({g}), ST_MinY({g}), ST_MaxY({g})'
_RTREE_TRIGGERS = {
    "insert": 'AFTER INSERT ON {t} WHEN (new.{g} NOT NULL AND NOT ST_IsEmpty(NEW.{g})) '
              'BEGIN INSERT OR REPLACE INTO {r} VALUES (NEW.{i}, {new}); END',
    "update6": 'AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} NOTNULL AND '
               'NOT ST_IsEmpty(NEW.{g})) AND (OLD.{g} NOTNULL AND NOT ST_IsEmpty(OLD.{g})) '
               'BEGIN UPDATE {r} SET minx = ST_MinX(NEW.{g}), maxx = ST_MaxX(NEW.{g}), '
               'miny = ST_MinY(NEW.{g}), maxy = ST_MaxY(NEW.{g}) WHERE id = NEW.{i}; END',
    "update7": 'AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} NOTNULL AND '
               'NOT ST_IsEmpty(NEW.{g})) AND (OLD.{g} ISNULL OR ST_IsEmpty(OLD.{g})) '
               'BEGIN INSERT INTO {r} VALUES (NEW.{i}, {new}); END',
    "update2": 'AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} ISNULL OR '
               'ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END',
    "update5": 'AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{g} NOTNULL AND '
               'NOT ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; '
               'INSERT OR REPLACE INTO {r} VALUES (NEW.{i}, {new}); END',
    "update4": 'AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{g} ISNULL OR '
               'ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END',
    "delete": 'AFTER DELETE ON {t} WHEN old.{g} NOT NULL BEGIN DELETE FROM {r} '
              'WHERE id = OLD.{i}; END',
}
"""The triggers of GeoPackage 1.4 (Annex F.3) that keep a layer's R*Tree in step when a GIS
edits the layer: what GDAL creates with the index, so an edited file stays consistent."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def add_spatial_indexes(path: Path, progress: ProgressCallback | None = None) -> None:
    """Give every geometry column of the GeoPackage at ``path`` its R*Tree spatial index.

    For each layer: the ``rtree_<table>_<column>`` virtual table filled with one
    ``INSERT … SELECT`` of each non-empty geometry's bounds (SpatiaLite reads the GeoPackage
    geometry blobs in its "amphibious" mode), the update triggers, and the ``gpkg_extensions``
    row that tells readers the index exists — all in one transaction, so a failure (a full
    disk) leaves no half-built index. SQLite inserts row by row through its page cache, so
    memory stays flat where GDAL's own build grows with the number of features.
    """
    db = sqlite_dbapi().connect(str(path), isolation_level=None)
    try:
        load_spatialite(db)
        db.execute("SELECT EnableGpkgAmphibiousMode()")
        db.execute("BEGIN")
        columns = db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns "
                             "ORDER BY table_name").fetchall()
        if columns:
            db.execute(_EXTENSIONS_TABLE)
        for table, column in columns:
            stage = f"index {table}"
            if progress:
                progress(stage, 0, 1)
            fid = next(row[1] for row in db.execute(f"PRAGMA table_info({_quote(table)})")
                       if row[5])
            rtree = _quote(f"rtree_{table}_{column}")
            t, g, i = _quote(table), _quote(column), _quote(fid)
            db.execute(f"CREATE VIRTUAL TABLE {rtree} USING rtree(id, minx, maxx, miny, maxy)")
            db.execute(f"INSERT INTO {rtree} SELECT {i}, {_BOUNDS.format(g=g)} FROM {t} "
                       f"WHERE {g} NOT NULL AND NOT ST_IsEmpty({g})")
            new = _BOUNDS.format(g=f"NEW.{g}")
            for suffix, body in _RTREE_TRIGGERS.items():
                trigger = _quote(f"rtree_{table}_{column}_{suffix}")
                db.execute(f"CREATE TRIGGER {trigger} "
                           + body.format(t=t, g=g, i=i, r=rtree, new=new))
            db.execute("INSERT INTO gpkg_extensions VALUES (?, ?, ?, ?, ?)",
                       (table, column, *RTREE_EXTENSION))
            if progress:
                progress(stage, 1, 1)
        db.execute("COMMIT")
    finally:
        db.close()


def export_geojson(
    engine: Engine,
    outdir: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    customers: bool = False,
    personal: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write one ``<layer>.geojson`` per layer into ``outdir``; return features per file."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        view = open_view(conn, scope)
        plan = geo_layers(view, customers)
        refuse_existing((outdir / f"{name}.geojson" for name in plan), overwrite)
        for name, (query, schema, _) in plan.items():
            file_name = f"{name}.geojson"
            with atomic_open(outdir / file_name) as handle:
                frames = _frames(conn, file_name, query, schema, personal, progress)
                counts[file_name] = _write_collection(
                    handle, (neutralise_formulas(frame) for frame in frames))
    return counts


def _write_collection(handle: IO[bytes], frames: Iterator[pl.DataFrame]) -> int:
    """A FeatureCollection, one feature per line, written frame by frame."""
    handle.write(b'{"type": "FeatureCollection", "features": [\n')
    written = 0
    for frame in frames:
        if "geometry" in frame.columns:
            shapes = shapely.from_wkb(frame["geometry"].to_numpy())
            geometries = [g if g is not None else "null" for g in shapely.to_geojson(shapes)]
            properties = frame.drop("geometry")
        else:
            geometries = ["null"] * frame.height
            properties = frame
        lines = properties.write_ndjson().splitlines()
        for props, geometry in zip(lines, geometries, strict=True):
            separator = b",\n" if written else b""
            handle.write(separator + b'{"type": "Feature", "properties": ' + props.encode()
                         + b', "geometry": ' + geometry.encode() + b"}")
            written += 1
    handle.write(b"\n]}\n")
    return written
