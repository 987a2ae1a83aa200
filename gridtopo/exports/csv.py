"""CSV export of the reconciled model: one file per source table plus the decided chain.

The per-table files carry exactly the canonical fields of ``sources.md`` in their order
(:data:`gridtopo.ingest.tables.TABLES`; geometry as ``lon``/``lat`` or WKT ``geometry``), so
the bundle reads back through ``gridtopo ingest`` to the same model. ``customer_links.csv``
has one row per customer: ``customer_id, transformer_id, feeder_id, station_id, method,
confidence`` (blank where the chain is broken); ingest knows it as its own output and
ignores it.
Tables stream in chunks (memory stays flat whatever the model size) from the model as of the
scope's run, within its filters. Personal data is masked (:mod:`gridtopo.privacy`) unless
``personal=True``; text that a spreadsheet would run as a formula is quoted
(:mod:`gridtopo.exports.formulas`).

>>> from gridtopo.db.read.scope import Scope
>>> written = export_csv(engine, Path("out/"), Scope(as_of="1"))
>>> written["edges.csv"], written["customers.csv"], written["customer_links.csv"]
(80, 2499, 2499)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, Select

from gridtopo.db.read.scope import Scope, View, open_view
from gridtopo.exports import layers
from gridtopo.exports.files import atomic_open, refuse_existing
from gridtopo.exports.formulas import neutralise_formulas
from gridtopo.exports.layers import Geometry, Schema
from gridtopo.ingest.tables import TABLES
from gridtopo.privacy import mask_frame
from gridtopo.progress import ProgressCallback

CHAIN_FILE = "customer_links.csv"


def csv_files(view: View) -> dict[str, tuple[Select[Any], Schema, list[str]]]:
    """Per file: the layer query, its schema, and the columns written (in order)."""
    def canonical(table: str) -> list[str]:
        return [f.name for f in TABLES[table].fields]

    lonlat: Geometry = "lonlat"
    return {
        "stations.csv": (layers.stations(view, lonlat),
                         layers.with_geometry(layers.STATION_SCHEMA, lonlat),
                         canonical("stations")),
        "feeders.csv": (layers.feeders(view), layers.FEEDER_SCHEMA, canonical("feeders")),
        "edges.csv": (layers.edges(view, "wkt"),
                      layers.with_geometry(layers.EDGE_SCHEMA, "wkt"), canonical("edges")),
        "transformers.csv": (layers.transformers(view, lonlat),
                             layers.with_geometry(layers.TRANSFORMER_SCHEMA, lonlat),
                             canonical("transformers")),
        "transformer_areas.csv": (layers.transformer_areas(view), layers.AREA_SCHEMA,
                                  canonical("transformer_areas")),
        "customers.csv": (layers.customers(view, lonlat),
                          layers.with_geometry(layers.CUSTOMER_SCHEMA, lonlat),
                          canonical("customers")),
        CHAIN_FILE: (layers.chain(view), layers.CHAIN_SCHEMA, list(layers.CHAIN_SCHEMA)),
    }


def export_csv(
    engine: Engine,
    outdir: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    personal: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the model as CSV files into ``outdir``; return rows written per file.

    Each file is written under a temporary name and renamed when complete, so an interrupted
    export never leaves a half-written file under its final name.
    """
    with engine.connect() as conn:
        view = open_view(conn, scope)
        files = csv_files(view)
        refuse_existing((outdir / name for name in files), overwrite)
        counts: dict[str, int] = {}
        for name, (query, schema, columns) in files.items():
            rows = 0
            with atomic_open(outdir / name) as handle:
                pl.DataFrame(schema=dict.fromkeys(columns, pl.Utf8)).write_csv(handle)
                for frame in layers.iter_frames(conn, query, schema, stage=f"export {name}",
                                                progress=progress):
                    if not personal:
                        frame = mask_frame(frame)
                    neutralise_formulas(frame.select(columns)).write_csv(
                        handle, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S")
                    rows += frame.height
            counts[name] = rows
    return counts
