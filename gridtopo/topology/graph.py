"""The equipment graph: connectivity nodes joined by lines, cables and switching devices.

This module is the shared contract of topology: quality audits, exports and the outage service
all decide "energized" through :func:`energized_nodes` on the graph :func:`build_graph` reads.

Semantics (``spec/sources.md``): a node is **energized** when a path of closed, in-service
edges joins it to the ``source_node`` of a feeder whose station is in service. Normally-open
switches are open unless closed by the caller; devices the caller opens are open.

Two refinements, both documented here because every consumer shares them:

* ``normal_open`` is honoured on switching devices only (switch, breaker, fuse, recloser); a
  line flagged normally open is a data error, not an open line.
* A feeder is fed through its **feeder breaker** (出线开关), the breaker at ``source_node``
  whose other terminal is the station bus. Supply enters at that bus, so opening the feeder
  breaker de-energizes the feeder, as an operator expects. Without such a breaker, supply
  enters at ``source_node`` itself.

>>> G = build_graph(engine)
>>> after = energized_nodes(G, open_devices=["SB-00000001"])
>>> after < energized_nodes(G)
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import networkx as nx
import polars as pl
from sqlalchemy import Engine

from gridtopo.db.models import SWITCHING_KINDS
from gridtopo.db.read.network import read_network
from gridtopo.errors import GridtopoError


class UnknownIdError(GridtopoError, KeyError):
    """Ids (device, customer, transformer, ...) that the model does not hold; names them."""

    http_status = 404

    def __init__(self, kind: str, ids: Iterable[str]) -> None:
        self.kind = kind
        self.ids = sorted(ids)
        shown = ", ".join(self.ids[:10]) + (f" (+{len(self.ids) - 10} more)"
                                            if len(self.ids) > 10 else "")
        super().__init__(f"unknown {kind} id(s): {shown}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownDeviceError(UnknownIdError):
    """Device ids that are not edges of the model."""

    def __init__(self, ids: Iterable[str]) -> None:
        super().__init__("device", ids)


def graph_from_frames(
    edges: pl.DataFrame, sources: pl.DataFrame, transformers: pl.DataFrame
) -> nx.MultiGraph:
    """The equipment graph from the three frames of
    :func:`gridtopo.db.read.network.read_network` (see build_graph)."""
    G = nx.MultiGraph()
    G.add_nodes_from(transformers["node"].unique().to_list())
    G.add_nodes_from(sources["source_node"].to_list())
    for eid, kind, fid, u, v, nopen, ins in edges.iter_rows():
        G.add_edge(u, v, key=eid, kind=kind, feeder_id=fid,
                   normal_open=bool(nopen) and kind in SWITCHING_KINDS, in_service=bool(ins))
    for node in G.nodes:
        G.nodes[node]["transformers"] = []  # one list per node (a shared default would alias)
    for tid, node in transformers.iter_rows():
        G.nodes[node]["transformers"].append(tid)
    G.graph["sources"] = dict(sources.select("feeder_id", "source_node").iter_rows())
    G.graph["edge_ends"] = {eid: (u, v) for eid, u, v in
                            edges.select("edge_id", "from_node", "to_node").iter_rows()}
    G.graph["supply"] = supply_nodes(edges, sources)
    return G


def supply_nodes(edges: pl.DataFrame, sources: pl.DataFrame) -> dict[str, str]:
    """``{feeder_id: node}`` where supply enters each source feeder: the station-side end of
    the breaker at its ``source_node`` when that end has only breakers (a station bus), else
    ``source_node`` itself."""
    breakers = edges.filter(pl.col("kind") == "breaker")
    pairs = pl.concat([
        breakers.select(node=pl.col("from_node"), other=pl.col("to_node")),
        breakers.select(node=pl.col("to_node"), other=pl.col("from_node")),
    ])
    feeder_side = edges.filter(pl.col("kind") != "breaker")
    not_bus = pl.concat([feeder_side["from_node"], feeder_side["to_node"]]).unique()
    bus = (
        sources.join(pairs, left_on="source_node", right_on="node")
        .filter(~pl.col("other").is_in(not_bus.implode()),
                pl.col("other") != pl.col("source_node"))
        .group_by("feeder_id").agg(pl.col("other").min())
    )
    supply = dict(sources.select("feeder_id", "source_node").iter_rows())
    supply.update(dict(bus.iter_rows()))
    return supply


def build_graph(engine: Engine) -> nx.MultiGraph:
    """Read the distribution model of ``engine`` into a networkx ``MultiGraph``.

    Nodes are connectivity nodes; each edge is keyed by its ``edge_id`` with attributes
    ``kind``, ``feeder_id``, ``normal_open``, ``in_service``. Node attribute ``transformers``
    lists the in-service transformers hanging there. Graph attributes:

    * ``sources``: ``{feeder_id: source_node}`` for feeders whose station is in service;
    * ``supply``: ``{feeder_id: node}`` where supply enters (the station bus beyond the feeder
      breaker, else ``source_node``);
    * ``edge_ends``: ``{edge_id: (from_node, to_node)}`` to find an edge by id.

    >>> G = build_graph(engine)
    >>> G.graph["sources"]["XL-000001"], G.graph["supply"]["XL-000001"]
    ('N00000002', 'N00000001')
    """
    return graph_from_frames(*read_network(engine))


def check_devices(G: nx.MultiGraph, devices: Iterable[str]) -> list[str]:
    """``devices`` as a list, or :class:`UnknownDeviceError` naming those that are no edge."""
    devices = list(devices)
    unknown = {d for d in devices if d not in G.graph["edge_ends"]}
    if unknown:
        raise UnknownDeviceError(unknown)
    return devices


def conducts(data: dict[str, object], eid: str, opened: set[str], closed: set[str]) -> bool:
    """Whether edge ``eid`` with attributes ``data`` conducts in the given switching state."""
    if not data["in_service"] or eid in opened:
        return False
    return not data["normal_open"] or eid in closed


def energized_nodes(
    G: nx.MultiGraph, open_devices: Iterable[str] = (), closed_devices: Iterable[str] = ()
) -> set[str]:
    """The nodes joined to a feeder's supply by closed, in-service edges.

    Normally-open switches are open unless in ``closed_devices``; devices in ``open_devices``
    are open (opening wins when a device is in both). Out-of-service edges never conduct.
    Unknown device ids raise :class:`UnknownDeviceError`.

    >>> G = build_graph(engine)
    >>> "N00000010" in energized_nodes(G)
    True
    >>> "N00000010" in energized_nodes(G, open_devices=["SB-00000009"])
    False
    """
    opened = set(check_devices(G, open_devices))
    closed = set(check_devices(G, closed_devices))
    seen: set[str] = set()
    queue: deque[str] = deque()
    for node in G.graph["supply"].values():
        if node in G and node not in seen:
            seen.add(node)
            queue.append(node)
    adj = G.adj
    while queue:
        node = queue.popleft()
        for other, keyed in adj[node].items():
            if other in seen:
                continue
            if any(conducts(data, eid, opened, closed) for eid, data in keyed.items()):
                seen.add(other)
                queue.append(other)
    return seen
