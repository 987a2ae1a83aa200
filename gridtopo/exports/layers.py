"""The queries every export reads: one per layer, as of a run, within a scope, in chunks.

A layer is a SELECT over the versioned tables (:func:`gridtopo.db.read.asof.versioned`) with
the filters of a :class:`~gridtopo.db.read.scope.View` applied in SQL, and the geometry in the
form the writer wants (``"wkb"`` → ``geometry`` bytes, ``"wkt"`` → ``geometry`` text,
``"lonlat"`` → ``lon``/``lat``, ``None`` → none). :func:`iter_frames` streams a layer as
polars frames of :data:`CHUNK_ROWS` rows with a fixed schema, so writers append chunk by chunk
in constant memory whatever the model size.

Personal data (customer name, address, phone) is read with the customers and masked by the
writers with :func:`gridtopo.privacy.mask_frame` unless the export asked for it — the rule the
API and the CLI mask by: ``张三丰`` → ``张**``, ``13812345678`` → ``138****5678``, an address
keeps at most its first 6 characters.

>>> from gridtopo.db.read.scope import Scope, open_view
>>> with engine.connect() as conn:
...     view = open_view(conn, Scope(feeders=("XL-000002",)))
...     sizes = [frame.height for frame in iter_frames(conn, edges(view, None), EDGE_SCHEMA)]
>>> sizes
[24]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import polars as pl
from sqlalchemy import (
    Boolean,
    Connection,
    FromClause,
    LargeBinary,
    Select,
    and_,
    func,
    select,
    type_coerce,
    union,
)
from sqlalchemy.sql.elements import ColumnElement

from gridtopo.db.models import SRID
from gridtopo.db.read.asof import versioned
from gridtopo.db.read.scope import View
from gridtopo.privacy import PERSONAL_FIELDS
from gridtopo.progress import ProgressCallback

CHUNK_ROWS = 50_000
Geometry = Literal["wkb", "wkt", "lonlat"] | None
Schema = dict[str, Any]

TIMESTAMP = pl.Datetime("us", "UTC")
STATION_SCHEMA: Schema = {"station_id": pl.Utf8, "station_name": pl.Utf8,
                          "voltage_kv": pl.Float64, "in_service": pl.Boolean}
FEEDER_SCHEMA: Schema = {"feeder_id": pl.Utf8, "feeder_name": pl.Utf8, "station_id": pl.Utf8,
                         "voltage_kv": pl.Float64, "source_node": pl.Utf8,
                         "in_service": pl.Boolean}
EDGE_SCHEMA: Schema = {"edge_id": pl.Utf8, "kind": pl.Utf8, "feeder_id": pl.Utf8,
                       "from_node": pl.Utf8, "to_node": pl.Utf8, "normal_open": pl.Boolean,
                       "in_service": pl.Boolean, "length_m": pl.Float64}
TRANSFORMER_SCHEMA: Schema = {
    "transformer_id": pl.Utf8, "transformer_name": pl.Utf8, "feeder_id": pl.Utf8,
    "node": pl.Utf8, "capacity_kva": pl.Float64, "marketing_area_code": pl.Utf8,
    "status": pl.Utf8, "updated_at": TIMESTAMP,
}
AREA_SCHEMA: Schema = {"area_code": pl.Utf8, "area_name": pl.Utf8, "feeder_name": pl.Utf8,
                       "station_name": pl.Utf8, "capacity_kva": pl.Float64,
                       "pms_transformer_id": pl.Utf8, "updated_at": TIMESTAMP}
CUSTOMER_SCHEMA: Schema = {
    "customer_id": pl.Utf8, "area_code": pl.Utf8, "area_name": pl.Utf8,
    "feeder_name": pl.Utf8, "station_name": pl.Utf8, "meter_id": pl.Utf8, "phase": pl.Utf8,
    "voltage_class": pl.Utf8, "contract_kva": pl.Float64, "status": pl.Utf8,
    "updated_at": TIMESTAMP, "customer_name": pl.Utf8, "address": pl.Utf8, "phone": pl.Utf8,
}
CHAIN_SCHEMA: Schema = {"customer_id": pl.Utf8, "transformer_id": pl.Utf8,
                        "feeder_id": pl.Utf8, "station_id": pl.Utf8, "method": pl.Utf8,
                        "confidence": pl.Float64}
NODE_SCHEMA: Schema = {"node_id": pl.Utf8, "feeder_id": pl.Utf8}


def with_geometry(schema: Schema, geometry: Geometry) -> Schema:
    """``schema`` plus the columns ``geometry`` adds."""
    if geometry == "lonlat":
        return {**schema, "lon": pl.Float64, "lat": pl.Float64}
    if geometry is not None:
        return {**schema, "geometry": pl.Binary if geometry == "wkb" else pl.Utf8}
    return schema


def _geometry(table: FromClause, geometry: Geometry) -> list[ColumnElement[Any]]:
    geom = table.c.geom
    if geometry == "lonlat":
        return [func.ST_X(geom).label("lon"), func.ST_Y(geom).label("lat")]
    if geometry == "wkb":
        return [type_coerce(func.ST_AsBinary(geom), LargeBinary).label("geometry")]
    if geometry == "wkt":
        return [func.ST_AsText(geom).label("geometry")]
    return []


def _in_box(table: FromClause, view: View) -> ColumnElement[bool]:
    assert view.bbox is not None
    x0, y0, x1, y1 = view.bbox
    box = f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
    intersects = func.ST_Intersects(table.c.geom, func.ST_GeomFromText(box, SRID),
                                    type_=Boolean)  # rendered "= 1" where booleans are ints
    return and_(table.c.geom.is_not(None), intersects)


def _columns(table: FromClause, schema: Schema) -> list[ColumnElement[Any]]:
    return [table.c[name] for name in schema if name in table.c]


def stations(view: View, geometry: Geometry = "wkb") -> Select[Any]:
    """Stations in scope (of the feeders in scope, under a station or feeder filter)."""
    t = versioned("stations", view.run)
    query = select(*_columns(t, STATION_SCHEMA), *_geometry(t, geometry))
    if view.station_ids is not None:
        query = query.where(t.c.station_id.in_(view.station_ids))
    if view.bbox is not None:
        query = query.where(_in_box(t, view))
    return query.order_by(t.c.station_id)


def _edges_in_box(view: View) -> Select[Any]:
    e = versioned("edges", view.run)
    return select(e.c.feeder_id).where(_in_box(e, view))


def feeders(view: View) -> Select[Any]:
    """Feeders in scope; under ``--bbox`` those with an edge in the box. No geometry: a
    feeder is drawn by its edges (the ``edges`` layer carries ``feeder_id``)."""
    t = versioned("feeders", view.run)
    query = select(*_columns(t, FEEDER_SCHEMA))
    if view.feeder_ids is not None:
        query = query.where(t.c.feeder_id.in_(view.feeder_ids))
    if view.bbox is not None:
        query = query.where(t.c.feeder_id.in_(_edges_in_box(view)))
    return query.order_by(t.c.feeder_id)


def edges(view: View, geometry: Geometry = "wkb") -> Select[Any]:
    """Lines, cables and switching devices in scope."""
    t = versioned("edges", view.run)
    query = select(*_columns(t, EDGE_SCHEMA), *_geometry(t, geometry))
    if view.feeder_ids is not None:
        query = query.where(t.c.feeder_id.in_(view.feeder_ids))
    if view.bbox is not None:
        query = query.where(_in_box(t, view))
    return query.order_by(t.c.edge_id)


def _transformer_filter(t: FromClause, view: View) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if view.feeder_ids is not None:
        conditions.append(t.c.feeder_id.in_(view.feeder_ids))
    if view.bbox is not None:
        conditions.append(_in_box(t, view))
    return conditions


def transformers(view: View, geometry: Geometry = "wkb") -> Select[Any]:
    """Distribution transformers in scope."""
    t = versioned("transformers", view.run)
    query = select(*_columns(t, TRANSFORMER_SCHEMA), *_geometry(t, geometry))
    return query.where(*_transformer_filter(t, view)).order_by(t.c.transformer_id)


def _linked_to_scope(view: View, kind: str, entity: ColumnElement[Any]) -> ColumnElement[bool]:
    """``entity`` has a ``kind`` link to a transformer in scope."""
    links = versioned("links", view.run)
    t = versioned("transformers", view.run)
    in_scope = select(t.c.transformer_id).where(*_transformer_filter(t, view))
    linked = select(links.c.from_id).where(links.c.kind == kind, links.c.to_id.in_(in_scope))
    return entity.in_(linked)


def transformer_areas(view: View) -> Select[Any]:
    """Transformer areas; under a filter those linked to a transformer in scope."""
    t = versioned("transformer_areas", view.run)
    query = select(*_columns(t, AREA_SCHEMA))
    if view.feeder_ids is not None or view.bbox is not None:
        query = query.where(_linked_to_scope(view, "area_transformer", t.c.area_code))
    return query.order_by(t.c.area_code)


def customers(view: View, geometry: Geometry = "wkb", *, chain: bool = False) -> Select[Any]:
    """Customers (with their personal columns, to be masked by the writer unless asked for);
    with ``chain`` also the reconciled ``transformer_id``. Under a station/feeder filter the
    customers whose reconciled transformer is in scope; under ``--bbox`` those inside it."""
    t = versioned("customers", view.run)
    personal = versioned("customer_personal", None)
    query = select(*_columns(t, CUSTOMER_SCHEMA), *(personal.c[c] for c in PERSONAL_FIELDS),
                   *_geometry(t, geometry))
    source: FromClause = t.outerjoin(personal, personal.c.customer_id == t.c.customer_id)
    if chain:
        query = query.add_columns(t.c.transformer_id)
    query = query.select_from(source)
    return _customers_in_scope(query, t, view)


def _customers_in_scope(query: Select[Any], t: Any, view: View) -> Select[Any]:
    """Restrict a customers query to the view's feeders (through the customer's reconciled
    transformer) and bounding box, in customer order."""
    if view.feeder_ids is not None:
        scope = versioned("transformers", view.run)
        query = query.where(t.c.transformer_id.in_(
            select(scope.c.transformer_id).where(*_transformer_filter(
                scope, View(run=view.run, feeder_ids=view.feeder_ids)))))
    if view.bbox is not None:
        query = query.where(_in_box(t, view))
    return query.order_by(t.c.customer_id)


def chain(view: View) -> Select[Any]:
    """One row per customer in scope: its transformer, feeder, station (blank where the chain
    breaks), and how the customer→transformer link was decided."""
    t = versioned("customers", view.run)
    tf = versioned("links", view.run).alias("tf")
    fs = versioned("links", view.run).alias("fs")
    query = (
        select(t.c.customer_id, t.c.transformer_id, tf.c.to_id.label("feeder_id"),
               fs.c.to_id.label("station_id"), t.c.link_method.label("method"),
               t.c.link_confidence.label("confidence"))
        .select_from(
            t.outerjoin(tf, and_(tf.c.kind == "transformer_feeder",
                                 tf.c.from_id == t.c.transformer_id))
            .outerjoin(fs, and_(fs.c.kind == "feeder_station", fs.c.from_id == tf.c.to_id))
        )
    )
    return _customers_in_scope(query, t, view)


def nodes(view: View) -> Select[Any]:
    """Connectivity nodes that edges, transformers and feeder sources in scope name, each
    with one feeder it belongs to (the smallest id among its edges', for determinism)."""
    e = edges(view, None).subquery()
    tr = transformers(view, None).subquery()
    fd = feeders(view).subquery()
    named = union(
        select(e.c.from_node.label("node_id"), e.c.feeder_id),
        select(e.c.to_node.label("node_id"), e.c.feeder_id),
        select(tr.c.node.label("node_id"), tr.c.feeder_id).where(tr.c.node.is_not(None)),
        select(fd.c.source_node.label("node_id"), fd.c.feeder_id)
        .where(fd.c.source_node.is_not(None)),
    ).subquery("named_nodes")
    return (select(named.c.node_id, func.min(named.c.feeder_id).label("feeder_id"))
            .group_by(named.c.node_id).order_by(named.c.node_id))


def count(conn: Connection, query: Select[Any]) -> int:
    """Rows ``query`` returns (for progress totals)."""
    return int(conn.execute(select(func.count()).select_from(
        query.order_by(None).subquery())).scalar_one())


def _series(name: str, values: Sequence[Any], dtype: Any) -> pl.Series:
    if dtype == TIMESTAMP:
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, str):  # SQLite keeps UTC date-times as text
            return pl.Series(name, values, dtype=pl.Utf8).str.to_datetime(
                "%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC", strict=False)
    return pl.Series(name, values, dtype=dtype, strict=False)


def _frame(rows: Sequence[Any], schema: Schema) -> pl.DataFrame:
    """Driver rows as a frame typed by ``schema`` (naive date-times are UTC)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pl.DataFrame([_series(name, columns[i], dtype)
                         for i, (name, dtype) in enumerate(schema.items())])


_cursors = itertools.count()


def _driver_rows(conn: Connection, query: Select[Any]) -> Iterator[Sequence[Any]]:
    """Run ``query`` on the driver's own cursor — a server-side cursor on PostgreSQL — and
    yield chunks of raw rows: SQLAlchemy's per-value result processing would cost more than
    the query itself."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positiontup is not None:
        params = [compiled.params[name] for name in compiled.positiontup]
    driver = conn.connection.driver_connection
    assert driver is not None
    if conn.dialect.name == "postgresql":
        cursor = driver.cursor(name=f"gridtopo_export_{next(_cursors)}")
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield rows
    finally:
        cursor.close()


def iter_frames(
    conn: Connection,
    query: Select[Any],
    schema: Schema,
    *,
    stage: str | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[pl.DataFrame]:
    """Stream ``query`` as frames of at most :data:`CHUNK_ROWS` rows typed by ``schema`` (its
    columns in the query's order). With ``progress``, reports ``stage`` against a row count."""
    names = [c.name for c in query.selected_columns]
    if names != list(schema):
        raise ValueError(f"query columns {names} do not match schema {list(schema)}")
    total = count(conn, query) if progress else 0
    done = 0
    if progress:
        progress(stage or "export", 0, total)
    for chunk in _driver_rows(conn, query):
        frame = _frame(chunk, schema)
        done += frame.height
        if progress:
            progress(stage or "export", done, max(total, done))
        yield frame
