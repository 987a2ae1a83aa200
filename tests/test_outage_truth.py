"""Outage answers against generator truth: every customer *set*, not only the count.

The truth side is built without the ingest or the reconciliation: the network straight from the
generator's distribution CSVs, each transformer at its true node (``truth/transformer_links.csv``)
and each customer under its true transformer (``truth/customer_links.csv``), with plain networkx
reachability from every feeder source. The model side is the query index of the ingested model.
For every switching device and line alone, and for sampled pairs of them, the customers the
model says an opening de-energizes must be exactly the customers truth says lose supply, among
the customers whose link is recoverable from the exports (the others are unlinked by design and
reported by the audit).
"""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import polars as pl
from sqlalchemy import Engine, text

from gridtopo.topology.index import build_index
from gridtopo.topology.queries import impact, impact_customers

PAIRS = 300


def _truth_graph(sources: Path) -> tuple[nx.Graph, list[str], list[str]]:
    """Closed edges of the exported network, the station buses, the edge ids.

    The generator feeds each feeder from its station's bus through the feeder breaker whose
    downstream end is ``source_node``: supply enters at the bus, so opening that breaker
    de-energizes the feeder."""
    edges = pl.read_csv(sources / "distribution" / "edges.csv", infer_schema=False)
    feeders = pl.read_csv(sources / "distribution" / "feeders.csv", infer_schema=False)
    graph = nx.Graph()
    for edge_id, a, b, normal_open in edges.select(
            "edge_id", "from_node", "to_node", "normal_open").iter_rows():
        if normal_open != "true":
            graph.add_edge(a, b, ids={edge_id} | graph.get_edge_data(a, b, {}).get("ids", set()))
    heads = set(feeders["source_node"].to_list())
    buses = edges.filter((pl.col("kind") == "breaker") & pl.col("to_node").is_in(heads))
    return graph, buses["from_node"].unique().to_list(), edges["edge_id"].to_list()


def _energized(graph: nx.Graph, sources: list[str], opened: set[str]) -> set[str]:
    """Nodes some source still reaches when the edges ``opened`` are open."""
    live = nx.Graph()
    live.add_nodes_from(graph)
    live.add_edges_from((a, b) for a, b, ids in graph.edges(data="ids") if ids - opened)
    reached: set[str] = set()
    for source in sources:
        if source in live and source not in reached:
            reached |= nx.node_connected_component(live, source)
    return reached


def _customers_by_node(sources: Path, engine: Engine) -> dict[str, set[str]]:
    """Active, recoverable customers grouped by their true transformer's true node."""
    truth = pl.read_csv(sources / "truth" / "customer_links.csv", infer_schema=False)
    transformers = pl.read_csv(sources / "truth" / "transformer_links.csv", infer_schema=False)
    with engine.connect() as conn:
        active = {row[0] for row in conn.execute(
            text("SELECT customer_id FROM customers WHERE status = 'active'"))}
    placed = truth.filter(pl.col("recoverable") == "true").join(
        transformers.filter(pl.col("in_export") == "true").select("transformer_id", "node"),
        on="transformer_id")
    by_node: dict[str, set[str]] = {}
    for customer, node in placed.select("customer_id", "node").iter_rows():
        if customer in active:
            by_node.setdefault(node, set()).add(customer)
    return by_node


def test_every_outage_customer_set_equals_truth(feeders_engine: Engine,
                                                feeders_sources: Path) -> None:
    graph, sources, edge_ids = _truth_graph(feeders_sources)
    by_node = _customers_by_node(feeders_sources, feeders_engine)
    comparable = set().union(*by_node.values())
    index = build_index(feeders_engine)
    normal = _energized(graph, sources, set())
    rng = random.Random(13)
    outages = [[e] for e in edge_ids] + [rng.sample(edge_ids, 2) for _ in range(PAIRS)]
    compared = nonempty = 0
    for devices in outages:
        dead = normal - _energized(graph, sources, set(devices))
        expected = {c for node in dead for c in by_node.get(node, ())}
        answer = set(impact_customers(index, impact(index, devices))) & comparable
        assert answer == expected, (devices, sorted(answer ^ expected)[:10])
        compared += 1
        nonempty += bool(expected)
    assert compared == len(edge_ids) + PAIRS
    assert nonempty > len(outages) / 2, "most outages must de-energize someone"
    truth = pl.read_csv(feeders_sources / "truth" / "customer_links.csv", infer_schema=False)
    assert len(comparable) > 0.9 * truth.height, "nearly every customer must be compared"
