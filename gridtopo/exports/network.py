"""The equipment graph of an export's scope, as of its run, for the graph-shaped formats.

GraphML, CIM and pandapower describe the network the way :mod:`gridtopo.topology.graph`
understands it; this module feeds that module's :func:`graph_from_frames` with the frames of
:func:`~gridtopo.topology.graph.read_network`, but read from the versioned, filtered layers,
so the graph is the one of the chosen run and scope. "Energized" therefore means exactly what
it means everywhere else in gridtopo (:func:`~gridtopo.topology.graph.energized_nodes`).

>>> with engine.connect() as conn:  # doctest: +SKIP
...     G = scoped_graph(conn, open_view(conn, Scope(as_of="3")))
"""

from __future__ import annotations

import networkx as nx
import polars as pl
from sqlalchemy import Connection, and_, func, or_, select

from gridtopo.exports import layers
from gridtopo.exports.asof import versioned
from gridtopo.exports.scope import View
from gridtopo.topology import graph


def _collect(conn: Connection, query: object, schema: layers.Schema) -> pl.DataFrame:
    frames = list(layers.iter_frames(conn, query, schema))  # type: ignore[arg-type]
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def network_frames(conn: Connection, view: View) -> tuple[pl.DataFrame, pl.DataFrame,
                                                          pl.DataFrame]:
    """Edges, in-service feeder sources and in-service transformers in ``view``, shaped as
    :func:`gridtopo.topology.graph.read_network` returns them."""
    edges = _collect(conn, layers.edges(view, None), layers.EDGE_SCHEMA).select(
        "edge_id", "kind", "feeder_id", "from_node", "to_node",
        pl.col("normal_open").fill_null(False).cast(pl.Int8),
        pl.col("in_service").fill_null(True).cast(pl.Int8),
    )
    scoped = layers.feeders(view).subquery()
    links, stations = versioned("links", view.run), versioned("stations", view.run)
    columns = {"feeder_id": scoped.c.feeder_id, "source_node": scoped.c.source_node,
               "station_id": stations.c.station_id}
    sources_query = (
        select(*(columns[name] for name in graph.SOURCE_SCHEMA))
        .select_from(
            scoped.outerjoin(links, and_(links.c.kind == "feeder_station",
                                         links.c.from_id == scoped.c.feeder_id))
            .join(stations, stations.c.station_id == func.coalesce(links.c.to_id,
                                                                   scoped.c.station_id))
        )
        .where(scoped.c.source_node.is_not(None),
               or_(stations.c.in_service.is_(None), stations.c.in_service),
               or_(scoped.c.in_service.is_(None), scoped.c.in_service))
        .order_by(scoped.c.feeder_id)
    )
    sources = _collect(conn, sources_query, dict(graph.SOURCE_SCHEMA))
    transformers = _collect(conn, layers.transformers(view, None),
                            layers.TRANSFORMER_SCHEMA).filter(
        pl.col("node").is_not_null(), pl.col("status") == "in_service"
    ).select("transformer_id", "node")
    return edges, sources, transformers


def scoped_graph(conn: Connection, view: View) -> nx.MultiGraph:
    """:func:`gridtopo.topology.graph.build_graph`'s graph, for ``view``'s run and scope."""
    return graph.graph_from_frames(*network_frames(conn, view))
