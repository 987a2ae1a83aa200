"""Traces on the equipment graph for crews and planners: isolation, restoration, loops, islands.

Plain functions over the networkx graph of :func:`~gridtopo.topology.graph.build_graph`, in
the style of networkx's own algorithms. The hot-path traces (upstream, downstream, impact) are
in :mod:`gridtopo.topology.queries` on the index.

A fault on switch SB-00000009 of feeder XL-000001: open the switches around it, then close the
tie SB-00000080 so that feeder XL-000002 picks up what lies beyond:

>>> from gridtopo.topology.graph import build_graph
>>> G = build_graph(engine)
>>> cut = isolation(G, ["SB-00000009"])
>>> cut["upstream"], len(cut["downstream"])
(['SB-00000005'], 8)
>>> [(t["tie"], t["via_feeder"], len(t["transformers"])) for t in restoration(G, cut["boundary"])]
[('SB-00000080', 'XL-000002', 15)]
>>> check_feeder(G, "XL-000001")
{'feeder_id': 'XL-000001', 'loops': [], 'islands': []}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import networkx as nx

from gridtopo.db.models import SWITCHING_KINDS
from gridtopo.topology.graph import UnknownIdError, check_devices, conducts, energized_nodes


def _transformers(G: nx.MultiGraph, nodes: Iterable[str]) -> list[str]:
    return sorted(t for n in nodes for t in G.nodes[n].get("transformers", []))


def isolation(G: nx.MultiGraph, faulted: Iterable[str]) -> dict[str, Any]:
    """The nearest closed switching devices that cut the faulted section off.

    The section is what the faulted edges reach through closed lines and cables; its boundary
    is the closed, in-service switching devices touching it. ``upstream`` are those whose far
    side is still supplied once the boundary is open (open them to isolate from the source),
    ``downstream`` the rest (their far side can be restored through ties).

    A fault on cable SB-00000003 is cut off by the feeder breaker upstream, the switch
    SB-00000005 and the fuses SB-00000017 and SB-00000030 downstream:

    >>> from gridtopo.topology.graph import build_graph
    >>> G = build_graph(engine)
    >>> cut = isolation(G, ["SB-00000003"])
    >>> cut["boundary"], cut["upstream"]
    (['SB-00000001', 'SB-00000005', 'SB-00000017', 'SB-00000030'], ['SB-00000001'])
    """
    faulted = check_devices(G, faulted)
    ends = G.graph["edge_ends"]
    section = {n for e in faulted for n in ends[e]}
    boundary: dict[str, str] = {}
    queue = deque(section)
    while queue:
        node = queue.popleft()
        for other, keyed in G.adj[node].items():
            for eid, data in keyed.items():
                if eid in faulted or not conducts(data, eid, set(), set()):
                    continue
                if data["kind"] in SWITCHING_KINDS:
                    boundary[eid] = other
                elif other not in section:
                    section.add(other)
                    queue.append(other)
    boundary = {e: far for e, far in boundary.items() if far not in section}
    supplied = energized_nodes(G, open_devices=[*boundary, *faulted])
    upstream = sorted(e for e, far in boundary.items() if far in supplied)
    return {"faulted": sorted(faulted), "boundary": sorted(boundary), "upstream": upstream,
            "downstream": sorted(set(boundary) - set(upstream)),
            "section_nodes": len(section), "section_transformers": _transformers(G, section)}


def restoration(G: nx.MultiGraph, open_devices: Iterable[str]) -> list[dict[str, Any]]:
    """Normally-open ties that could pick up what opening ``open_devices`` leaves dead (转供).

    Pass the devices that isolate the fault (see :func:`isolation`) so that closing a tie does
    not feed the fault. Each candidate tie: the nodes and transformers its closing restores,
    and the feeder that would carry them; largest pick-up first.

    >>> from gridtopo.topology.graph import build_graph
    >>> best = restoration(build_graph(engine), ["SB-00000009"])[0]
    >>> best["tie"], best["via_feeder"], best["nodes"], len(best["transformers"])
    ('SB-00000080', 'XL-000002', 35, 16)
    >>> best["transformers"][:2]
    ['PB-0001001', 'PB-0001005']
    """
    opened = check_devices(G, open_devices)
    before = energized_nodes(G)
    after = energized_nodes(G, open_devices=opened)
    dead = before - after
    ties = []
    for eid, (u, v) in G.graph["edge_ends"].items():
        data = G.edges[u, v, eid]
        if not data["normal_open"] or not data["in_service"] or eid in opened:
            continue
        if (u in dead and v in after) or (v in dead and u in after):
            donor, start = (v, u) if u in dead else (u, v)
            restored = _reach_within(G, start, dead, set(opened))
            feeder = next((d["feeder_id"] for _, _, d in G.edges(donor, data=True)
                           if d["feeder_id"]), None)
            ties.append({"tie": eid, "via_feeder": feeder, "nodes": len(restored),
                         "transformers": _transformers(G, restored)})
    ties.sort(key=lambda t: (-len(t["transformers"]), -t["nodes"], t["tie"]))
    return ties


def _reach_within(G: nx.MultiGraph, start: str, allowed: set[str], opened: set[str]
                  ) -> set[str]:
    """Nodes of ``allowed`` that ``start`` reaches by conducting edges: what a closed tie
    re-energizes among the dead nodes, without searching the whole network again."""
    seen = {start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for other, keyed in G.adj[node].items():
            if other in allowed and other not in seen and any(
                    conducts(d, e, opened, set()) for e, d in keyed.items()):
                seen.add(other)
                queue.append(other)
    return seen


def _feeder_graph(G: nx.MultiGraph, feeder_id: str) -> nx.MultiGraph:
    """The conducting edges of one feeder in the normal state."""
    H = nx.MultiGraph()
    for u, v, eid, data in G.edges(keys=True, data=True):
        if data["feeder_id"] == feeder_id and conducts(data, eid, set(), set()):
            H.add_edge(u, v, key=eid)
    return H


def loops(G: nx.MultiGraph, feeder_id: str) -> list[list[str]]:
    """Cycles of closed edges in a feeder that should be radial, each as its edge ids.

    Feeder XL-000001 is radial; a closed line added from N00000010 to N00000013 closes a
    loop with the line, the recloser and the cable between them:

    >>> from gridtopo.topology.graph import build_graph
    >>> G = build_graph(engine)
    >>> loops(G, "XL-000001")
    []
    >>> G.add_edge("N00000010", "N00000013", key="LINE-NEW", kind="line",
    ...            feeder_id="XL-000001", normal_open=False, in_service=True)
    'LINE-NEW'
    >>> loops(G, "XL-000001")
    [['LINE-NEW', 'SB-00000010', 'SB-00000011', 'SB-00000012']]
    """
    H = _feeder_graph(G, feeder_id)
    found = []
    for u, v in {(min(a, b), max(a, b)) for a, b in H.edges() if H.number_of_edges(a, b) > 1}:
        found.append(sorted(H[u][v]))
    simple = nx.Graph(H)
    for cycle in nx.cycle_basis(simple):
        pairs = zip(cycle, cycle[1:] + cycle[:1], strict=True)
        found.append(sorted(min(H[a][b]) for a, b in pairs))
    return sorted(found)


def islands(G: nx.MultiGraph, feeder_id: str) -> list[dict[str, Any]]:
    """Parts of a feeder that no source reaches in the normal state, with their transformers.

    With switch SB-00000009 out of service, everything beyond it on XL-000001 is an island
    (the normally-open tie to XL-000002 does not feed it):

    >>> from gridtopo.topology.graph import build_graph
    >>> G = build_graph(engine)
    >>> G.edges["N00000009", "N00000010", "SB-00000009"]["in_service"] = False
    >>> [(len(i["nodes"]), i["transformers"][:2]) for i in islands(G, "XL-000001")]
    [(35, ['PB-0001001', 'PB-0001005'])]
    """
    H = _feeder_graph(G, feeder_id)
    H.add_nodes_from(n for u, v, d in G.edges(data=True) if d["feeder_id"] == feeder_id
                     for n in (u, v))
    supplied = energized_nodes(G)
    result = []
    for component in nx.connected_components(H):
        dead = component - supplied
        if dead:
            result.append({"nodes": sorted(dead), "transformers": _transformers(G, dead)})
    return sorted(result, key=lambda r: r["nodes"])


def check_feeder(G: nx.MultiGraph, feeder_id: str) -> dict[str, Any]:
    """A feeder's loops (:func:`loops`) and islands (:func:`islands`): the checks a planner
    runs on one feeder. :class:`~gridtopo.topology.graph.UnknownIdError` when no edge of the
    model belongs to ``feeder_id``.
    """
    if not any(d["feeder_id"] == feeder_id for _, _, d in G.edges(data=True)):
        raise UnknownIdError("feeder", [feeder_id])
    return {"feeder_id": feeder_id, "loops": loops(G, feeder_id),
            "islands": islands(G, feeder_id)}
