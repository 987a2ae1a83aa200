"""CSV export of the reconciled model: one file per source table plus the decided chain.

The per-table files use the canonical headers of ``sources.md`` (geometry as ``lon``/``lat`` or
WKT ``geometry``), so the bundle reads back through ``gridtopo ingest``. ``customer_links.csv``
has one row per customer: ``customer_id, transformer_id, feeder_id, station_id, method,
confidence`` (blank where the chain is broken). Tables are streamed in chunks, so memory stays
flat whatever the model size. Personal data is only written with ``personal=True``.

>>> export_csv(engine, Path("out/"))  # doctest: +SKIP
{'stations.csv': 12, ..., 'customer_links.csv': 20000}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, Select, and_, func, select
from sqlalchemy.orm import aliased

from gridtopo.db.models import (
    Customer,
    CustomerPersonal,
    Edge,
    Feeder,
    Link,
    Station,
    Transformer,
    TransformerArea,
)
from gridtopo.errors import OutputExistsError

CHUNK_ROWS = 100_000
Progress = Callable[[str, int, int], None]


def _point(model: type, columns: list) -> list:  # type: ignore[type-arg]
    return [*columns, func.ST_X(model.geom).label("lon"), func.ST_Y(model.geom).label("lat")]


def table_queries(personal: bool = False) -> dict[str, Select]:  # type: ignore[type-arg]
    """The SELECT of every exported file, with canonical column names."""
    customer_columns = [
        Customer.customer_id, Customer.area_code, Customer.area_name, Customer.feeder_name,
        Customer.station_name, Customer.meter_id, Customer.phase, Customer.voltage_class,
        Customer.contract_kva, Customer.status, Customer.updated_at,
    ]
    customers = select(*_point(Customer, customer_columns))
    if personal:
        customers = select(
            *_point(Customer, customer_columns), CustomerPersonal.customer_name,
            CustomerPersonal.address, CustomerPersonal.phone,
        ).outerjoin(CustomerPersonal)
    tf, fs = aliased(Link), aliased(Link)
    ct = aliased(Link)
    links = (
        select(
            Customer.customer_id, ct.to_id.label("transformer_id"),
            tf.to_id.label("feeder_id"), fs.to_id.label("station_id"), ct.method,
            ct.confidence,
        )
        .outerjoin(ct, and_(ct.kind == "customer_transformer", ct.from_id == Customer.customer_id))
        .outerjoin(tf, and_(tf.kind == "transformer_feeder", tf.from_id == ct.to_id))
        .outerjoin(fs, and_(fs.kind == "feeder_station", fs.from_id == tf.to_id))
    )
    return {
        "stations.csv": select(*_point(Station, [Station.station_id, Station.station_name,
                                                 Station.voltage_kv])),
        "feeders.csv": select(Feeder.feeder_id, Feeder.feeder_name, Feeder.station_id,
                              Feeder.voltage_kv, Feeder.source_node),
        "edges.csv": select(Edge.edge_id, Edge.kind, Edge.feeder_id, Edge.from_node,
                            Edge.to_node, Edge.normal_open, Edge.length_m,
                            func.ST_AsText(Edge.geom).label("geometry")),
        "transformers.csv": select(*_point(Transformer, [
            Transformer.transformer_id, Transformer.transformer_name, Transformer.feeder_id,
            Transformer.node, Transformer.capacity_kva, Transformer.marketing_area_code,
            Transformer.status, Transformer.updated_at])),
        "transformer_areas.csv": select(
            TransformerArea.area_code, TransformerArea.area_name, TransformerArea.feeder_name,
            TransformerArea.station_name, TransformerArea.capacity_kva,
            TransformerArea.pms_transformer_id, TransformerArea.updated_at),
        "customers.csv": customers,
        "customer_links.csv": links,
    }


def _order_key(query: Select) -> Select:  # type: ignore[type-arg]
    return query.order_by(next(iter(query.selected_columns)))


def export_csv(
    engine: Engine,
    outdir: Path,
    *,
    personal: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write the model as CSV files into ``outdir``; return rows written per file.

    Each file is written under a temporary name and renamed when complete, so an interrupted
    export never leaves a half-written file under its final name.
    """
    queries = table_queries(personal)
    outdir.mkdir(parents=True, exist_ok=True)
    clashes = [name for name in queries if (outdir / name).exists()]
    if clashes and not overwrite:
        raise OutputExistsError(
            f"{outdir / clashes[0]} already exists: pass --overwrite to replace the export"
        )
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for name, query in queries.items():
            final = outdir / name
            partial = outdir / f".{name}.partial"
            rows = 0
            result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
                _order_key(query)
            )
            columns = list(result.keys())
            try:
                with partial.open("wb") as handle:
                    pl.DataFrame(schema=dict.fromkeys(columns, pl.Utf8)).write_csv(handle)
                    for chunk in result.partitions(CHUNK_ROWS):
                        frame = pl.DataFrame([tuple(r) for r in chunk], schema=columns,
                                             orient="row", infer_schema_length=None)
                        frame.write_csv(handle, include_header=False,
                                        datetime_format="%Y-%m-%d %H:%M:%S")
                        rows += frame.height
                        if progress:
                            progress(f"export {name}", rows, rows)
                os.replace(partial, final)
            finally:
                partial.unlink(missing_ok=True)
            counts[name] = rows
    return counts
