"""The network as every consumer reads it: edges, supply sources and transformers as frames.

One rule decides which feeders are **supply sources** (``spec/sources.md``): a feeder with a
``source_node`` whose station — the reconciled ``feeder_station`` link, else the feeder's own
station code — and the feeder itself are in service. :func:`supply_sources` states it once as a
query over any version of the tables (now, or as of a run), so the outage index, the audit's
graph and the graph-shaped exports agree.

>>> print(supply_sources(Base.metadata.tables["feeders"], None).compile())  # doctest: +ELLIPSIS
SELECT feeders.feeder_id, feeders.source_node, stations.station_id...
"""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine, FromClause, Select, and_, func, or_, select

from gridtopo.db.models import Base
from gridtopo.db.read.asof import versioned
from gridtopo.db.read.frames import read_frame

EDGE_SQL = (
    "SELECT edge_id, kind, feeder_id, from_node, to_node, "
    "CASE WHEN normal_open THEN 1 ELSE 0 END, "
    "CASE WHEN in_service IS NULL OR in_service THEN 1 ELSE 0 END FROM edges"
)
EDGE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "edge_id": pl.Utf8, "kind": pl.Utf8, "feeder_id": pl.Utf8, "from_node": pl.Utf8,
    "to_node": pl.Utf8, "normal_open": pl.Int8, "in_service": pl.Int8,
}
SOURCE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "feeder_id": pl.Utf8, "source_node": pl.Utf8, "station_id": pl.Utf8,
}
TRANSFORMER_SQL = (
    "SELECT transformer_id, node FROM transformers "
    "WHERE node IS NOT NULL AND status = 'in_service'"
)
TRANSFORMER_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "transformer_id": pl.Utf8, "node": pl.Utf8,
}


def supply_sources(feeders: FromClause, run: int | None) -> Select[Any]:
    """``feeder_id, source_node, station_id`` of the supply sources among ``feeders`` (a
    table or a scoped/versioned selectable with the feeders' columns), as of ``run``."""
    links, stations = versioned("links", run), versioned("stations", run)
    return (
        select(feeders.c.feeder_id, feeders.c.source_node, stations.c.station_id)
        .select_from(
            feeders.outerjoin(links, and_(links.c.kind == "feeder_station",
                                          links.c.from_id == feeders.c.feeder_id))
            .join(stations, stations.c.station_id == func.coalesce(links.c.to_id,
                                                                   feeders.c.station_id))
        )
        .where(feeders.c.source_node.is_not(None),
               or_(stations.c.in_service.is_(None), stations.c.in_service),
               or_(feeders.c.in_service.is_(None), feeders.c.in_service))
        .order_by(feeders.c.feeder_id)
    )


def read_network(engine: Engine) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Edges, supply sources (:func:`supply_sources`) and in-service transformers of the current
    model as frames."""
    sources = supply_sources(Base.metadata.tables["feeders"], None)
    with engine.connect() as conn:
        sources_sql = str(sources.compile(dialect=conn.dialect,
                                          compile_kwargs={"literal_binds": True}))
        edges = read_frame(conn, EDGE_SQL, EDGE_SCHEMA)
        supply = read_frame(conn, sources_sql, SOURCE_SCHEMA)
        transformers = read_frame(conn, TRANSFORMER_SQL, TRANSFORMER_SCHEMA)
    return edges, supply, transformers
