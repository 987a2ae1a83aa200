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

The GeoPackage is one file with these layers, each written by pyogrio from a stream of Arrow
batches, one per chunk of rows (memory stays flat); GeoJSON is one ``<layer>.geojson``
FeatureCollection per layer in a directory, written as a stream. Both are written under
temporary names and renamed when complete.

>>> export_gpkg(engine, Path("model.gpkg"), Scope(feeders=("XL-000001",)))  # doctest: +SKIP
{'stations': 1, 'feeders': 1, 'edges': 45, 'transformers': 22}
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

from gridtopo.exports import layers
from gridtopo.exports.files import atomic_open, atomic_path, refuse_existing
from gridtopo.exports.layers import Geometry, Progress, Schema
from gridtopo.exports.scope import Scope, View, open_view

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
    progress: Progress | None,
) -> Iterator[pl.DataFrame]:
    for frame in layers.iter_frames(conn, query, schema, stage=f"export {name}",
                                    progress=progress):
        yield frame if personal else layers.mask_personal(frame)


def export_gpkg(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    customers: bool = False,
    personal: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write the model's layers into one GeoPackage at ``path``; return features per layer.

    Each layer is one pyogrio write fed by a stream of Arrow batches (one per chunk), so the
    file stays open while the rows flow and GDAL builds the spatial index once at the end.
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
            kwargs: dict[str, Any] = {"geometry_name": "geometry", "geometry_type": geometry_type,
                                      "crs": CRS} if geometry_type else {}
            pyogrio.write_arrow(pa.RecordBatchReader.from_batches(arrow_schema, batches()),
                                partial, layer=name, driver="GPKG", append=partial.exists(),
                                **kwargs)
    return counts


def export_geojson(
    engine: Engine,
    outdir: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    customers: bool = False,
    personal: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
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
                counts[file_name] = _write_collection(
                    handle, _frames(conn, file_name, query, schema, personal, progress))
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
