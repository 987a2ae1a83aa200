"""Topology rules: the connectivity of the equipment graph (:mod:`gridtopo.topology.graph`)
in the normal switching state. Each takes the facts and the graph.

* ``transformer_not_energized``: in-service transformers whose node no closed, in-service path
  joins to a feeder's supply in the normal switching state (islands);
* ``feeder_loop``: closed, in-service edges forming a cycle, reported once per feeder with the
  edges of the cycle (a radial feeder has none);
* ``feeder_no_tie``: feeders with no normally-open switch to another feeder;
* ``feeders_paralleled``: feeders whose supplies closed, in-service edges join — a tie left
  closed between two feeders makes a loop through both stations (``feeder_loop`` sees a cycle
  only when both feeders leave the same station bus);
* ``edge_self_loop``: an edge whose two ends are one node;
* ``edge_feeder_unknown``: an edge whose feeder code names no feeder of the model.

Energization is one breadth-first search over the whole graph; cycles are found per connected
component of closed edges whose edge count exceeds its node count − 1, so only components that
do hold a cycle are searched.
"""

from __future__ import annotations

import networkx as nx
import polars as pl

from gridtopo.db.models import SWITCHING_KINDS
from gridtopo.quality.facts import Facts
from gridtopo.quality.rules._common import findings, json
from gridtopo.topology.graph import conducts, energized_nodes


def transformer_not_energized(f: Facts, G: nx.MultiGraph) -> pl.DataFrame:
    """In-service transformers on nodes the normal state leaves without supply."""
    live = energized_nodes(G)
    dead = [n for n in G.nodes if n not in live and G.nodes[n]["transformers"]]
    nodes = pl.DataFrame({"node": dead}, schema={"node": pl.Utf8})
    rows = f.transformers.filter(pl.col("status") == "in_service").join(nodes, on="node")
    return findings(
        rows, "transformer_not_energized", "transformer", "transformer_id",
        pl.format("transformer {} at node {} is not energized in the normal state",
                  "transformer_id", "node"),
        json(node=pl.col("node")), feeder="linked_feeder",
    )


def feeder_loop(f: Facts, G: nx.MultiGraph) -> pl.DataFrame:
    """Feeders holding a cycle of closed, in-service edges; evidence lists the cycle's edges."""
    closed = nx.Graph()
    parallel: list[list[str]] = []
    for u, v, eid, data in G.edges(keys=True, data=True):
        if not conducts(data, eid, set(), set()):
            continue
        if closed.has_edge(u, v):
            parallel.append([closed[u][v]["edge_id"], eid])
        else:
            closed.add_edge(u, v, edge_id=eid, feeder_id=data["feeder_id"])
    cycles = list(parallel)
    for component in nx.connected_components(closed):
        sub = closed.subgraph(component)
        if sub.number_of_edges() < sub.number_of_nodes():
            continue
        for cycle in nx.cycle_basis(sub):
            ring = zip(cycle, cycle[1:] + cycle[:1], strict=True)
            cycles.append([closed[u][v]["edge_id"] for u, v in ring])
    edge_feeder = {eid: data["feeder_id"] for _, _, eid, data in G.edges(keys=True, data=True)}
    rows: dict[str, list[str]] = {}
    for cycle in cycles:
        feeders = sorted({edge_feeder[e] for e in cycle if edge_feeder[e]})
        for feeder in feeders or [None]:
            rows.setdefault(feeder or "(none)", []).extend(sorted(cycle))
    frame = pl.DataFrame(
        {"feeder_id": list(rows), "edges": [", ".join(e[:20]) for e in rows.values()],
         "n": [len(e) for e in rows.values()]},
        schema={"feeder_id": pl.Utf8, "edges": pl.Utf8, "n": pl.Int64},
    )
    return findings(
        frame, "feeder_loop", "feeder", "feeder_id",
        pl.format("feeder {}: {} closed edges form a cycle ({})", "feeder_id", "n", "edges"),
        json(edges=pl.col("edges")), lon=None, lat=None,
    )


def feeder_no_tie(f: Facts, G: nx.MultiGraph) -> pl.DataFrame:
    """Feeders with no normally-open switching device reaching another feeder."""
    node_feeder: dict[str, set[str]] = {}
    ties: list[tuple[str, str]] = []
    for u, v, _, data in G.edges(keys=True, data=True):
        if data["normal_open"] and data["kind"] in SWITCHING_KINDS:
            ties.append((u, v))
        elif data["feeder_id"]:
            node_feeder.setdefault(u, set()).add(data["feeder_id"])
            node_feeder.setdefault(v, set()).add(data["feeder_id"])
    tied: set[str] = set()
    for u, v in ties:
        a, b = node_feeder.get(u, set()), node_feeder.get(v, set())
        if a and b and a != b:
            tied |= a | b
    rows = f.model.feeders.filter(~pl.col("feeder_id").is_in(list(tied)))
    return findings(
        rows, "feeder_no_tie", "feeder", "feeder_id",
        pl.format("feeder {} ({}) has no tie to another feeder", "feeder_id",
                  pl.col("feeder_name").fill_null("")),
        json(station_id=pl.col("station_id")), lon=None, lat=None,
    )



def feeders_paralleled(f: Facts, G: nx.MultiGraph) -> pl.DataFrame:
    """Feeders whose supply nodes one component of closed, in-service edges joins."""
    closed = nx.Graph()
    closed.add_nodes_from(G.graph["supply"].values())
    closed.add_edges_from((u, v) for u, v, eid, data in G.edges(keys=True, data=True)
                          if conducts(data, eid, set(), set()))
    component = {node: i for i, nodes in enumerate(nx.connected_components(closed))
                 for node in nodes}
    by_component: dict[int, list[str]] = {}
    for feeder, node in G.graph["supply"].items():
        by_component.setdefault(component[node], []).append(feeder)
    rows = [(feeder, ", ".join(sorted(set(feeders) - {feeder})[:20]))
            for feeders in by_component.values()
            if len({G.graph["supply"][x] for x in feeders}) > 1 for feeder in feeders]
    frame = pl.DataFrame(rows, schema={"feeder_id": pl.Utf8, "others": pl.Utf8}, orient="row")
    return findings(
        frame, "feeders_paralleled", "feeder", "feeder_id",
        pl.format("feeder {}: closed edges join its supply to that of feeder(s) {} (a tie "
                  "left closed makes a loop between them)", "feeder_id", "others"),
        json(other_feeders=pl.col("others")), lon=None, lat=None,
    )


def edge_self_loop(f: Facts, G: nx.MultiGraph) -> pl.DataFrame:
    """Edges that start and end on the same node."""
    frame = pl.DataFrame(
        [(eid, u, data["feeder_id"]) for u, v, eid, data in G.edges(keys=True, data=True)
         if u == v],
        schema={"edge_id": pl.Utf8, "node": pl.Utf8, "feeder_id": pl.Utf8}, orient="row")
    return findings(
        frame, "edge_self_loop", "edge", "edge_id",
        pl.format("edge {} starts and ends at node {}", "edge_id", "node"),
        json(node=pl.col("node")), lon=None, lat=None,
    )


def edge_feeder_unknown(f: Facts, G: nx.MultiGraph) -> pl.DataFrame:
    """Edges whose feeder code names no feeder."""
    known = set(f.model.feeders["feeder_id"].to_list())
    frame = pl.DataFrame(
        [(eid, data["feeder_id"]) for _, _, eid, data in G.edges(keys=True, data=True)
         if data["feeder_id"] is not None and data["feeder_id"] not in known],
        schema={"edge_id": pl.Utf8, "code": pl.Utf8}, orient="row")
    return findings(
        frame, "edge_feeder_unknown", "edge", "edge_id",
        pl.format("edge {}: feeder code {} is no feeder", "edge_id", "code"),
        json(feeder_id=pl.col("code")), feeder=None, lon=None, lat=None,
    )
