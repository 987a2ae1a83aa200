"""The equipment graph of an export's scope, as of its run, for the graph-shaped formats.

GraphML, CIM and pandapower describe the network the way :mod:`gridtopo.topology.graph`
understands it; this module feeds that module's :func:`graph_from_frames` with frames shaped as
:func:`~gridtopo.db.read.network.read_network`'s, but read from the versioned, filtered layers,
so the graph is the one of the chosen run and scope. "Energized" therefore means exactly what
it means everywhere else in gridtopo (:func:`~gridtopo.topology.graph.energized_nodes`).

>>> from gridtopo.db.read.scope import Scope, open_view
>>> with engine.connect() as conn:
...     G = read_network(conn, open_view(conn, Scope(as_of="1", feeders=("XL-000002",)))).graph()
>>> G.number_of_edges(), G.graph["sources"]
(24, {'XL-000002': 'N00000056'})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import polars as pl
from sqlalchemy import Connection, Select

from gridtopo.db.read.network import SOURCE_SCHEMA, supply_sources
from gridtopo.db.read.scope import View
from gridtopo.exports import layers
from gridtopo.topology import graph


def _collect(conn: Connection, query: Select[Any], schema: layers.Schema) -> pl.DataFrame:
    frames = list(layers.iter_frames(conn, query, schema))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


@dataclass(frozen=True)
class ScopedNetwork:
    """The network layers of a view (all their fields) and its in-service feeder sources."""

    edges: pl.DataFrame
    feeders: pl.DataFrame
    transformers: pl.DataFrame
    sources: pl.DataFrame

    def graph_frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Edges, sources, transformers shaped as
        :func:`gridtopo.db.read.network.read_network` returns them."""
        edges = self.edges.select(
            "edge_id", "kind", "feeder_id", "from_node", "to_node",
            pl.col("normal_open").fill_null(False).cast(pl.Int8),
            pl.col("in_service").fill_null(True).cast(pl.Int8),
        )
        transformers = self.transformers.filter(
            pl.col("node").is_not_null(), pl.col("status") == "in_service"
        ).select("transformer_id", "node")
        return edges, self.sources, transformers

    def graph(self) -> nx.MultiGraph:
        """:func:`gridtopo.topology.graph.build_graph`'s graph of these layers."""
        return graph.graph_from_frames(*self.graph_frames())


def read_network(conn: Connection, view: View) -> ScopedNetwork:
    """Edges, feeders, transformers and feeder sources of ``view``'s run and scope.

    The sources are :func:`gridtopo.db.read.network.supply_sources` of the scoped feeders.
    """
    feeders = _collect(conn, layers.feeders(view), layers.FEEDER_SCHEMA)
    sources_query = supply_sources(layers.feeders(view).subquery(), view.run)
    return ScopedNetwork(
        edges=_collect(conn, layers.edges(view, None), layers.EDGE_SCHEMA),
        feeders=feeders,
        transformers=_collect(conn, layers.transformers(view, None), layers.TRANSFORMER_SCHEMA),
        sources=_collect(conn, sources_query, dict(SOURCE_SCHEMA)),
    )
