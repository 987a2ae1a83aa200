"""GraphML of the equipment graph, for networkx, Gephi, yEd and graph databases.

The graph is :func:`gridtopo.topology.graph.build_graph`'s, for the export's run and scope
(:mod:`gridtopo.exports.network`): nodes are connectivity nodes, edges lines, cables and
switching devices (``id`` = ``edge_id``, ``source``/``target`` = from/to node). Attributes:

* node: ``transformers`` (in-service transformer ids, comma-separated), ``supply_of``
  (feeders whose supply enters here), ``energized`` (in the normal switching state);
* edge: ``kind``, ``feeder_id`` (empty for a tie), ``normal_open``, ``in_service``.

The document is written element by element rather than built as one XML tree, so only the
graph itself is held in memory. ``networkx.read_graphml(path, force_multigraph=True)`` gives
back a ``MultiGraph`` keyed by edge id.

>>> import networkx as nx
>>> from gridtopo.db.read.scope import Scope
>>> export_graphml(engine, Path("net.graphml"), Scope(feeders=("XL-000002",)))
{'nodes': 25, 'edges': 24}
>>> nx.read_graphml("net.graphml", force_multigraph=True).number_of_edges()
24
"""

from __future__ import annotations

from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import Engine

from gridtopo.db.read.scope import Scope, open_view
from gridtopo.exports.files import atomic_open, refuse_existing
from gridtopo.exports.network import read_network
from gridtopo.progress import ProgressCallback
from gridtopo.topology.graph import energized_nodes

NODE_KEYS = {"transformers": "string", "supply_of": "string", "energized": "boolean"}
EDGE_KEYS = {"kind": "string", "feeder_id": "string", "normal_open": "boolean",
             "in_service": "boolean"}
PROGRESS_EVERY = 100_000


def _data(key: str, value: object) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f'<data key="{key}">{escape(text)}</data>'


def _header(handle: IO[str]) -> None:
    handle.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                 '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
                 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                 'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
                 'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')
    for owner, keys in (("node", NODE_KEYS), ("edge", EDGE_KEYS)):
        for name, kind in keys.items():
            handle.write(f'<key id="{name}" for="{owner}" attr.name="{name}" '
                         f'attr.type="{kind}"/>\n')
    handle.write('<graph edgedefault="undirected">\n')


def export_graphml(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the equipment graph of ``scope`` to ``path``; return node and edge counts."""
    refuse_existing([path], overwrite)
    with engine.connect() as conn:
        G = read_network(conn, open_view(conn, scope)).graph()
    energized = energized_nodes(G)
    supply_of: dict[str, list[str]] = {}
    for feeder, node in G.graph["supply"].items():
        supply_of.setdefault(node, []).append(feeder)
    total = G.number_of_nodes() + G.number_of_edges()
    done = 0
    with atomic_open(path, "w", encoding="utf-8") as handle:
        _header(handle)
        for node, attrs in G.nodes(data=True):
            handle.write(f"<node id={quoteattr(node)}>"
                         + _data("transformers", ",".join(sorted(attrs["transformers"])))
                         + _data("supply_of", ",".join(sorted(supply_of.get(node, []))))
                         + _data("energized", node in energized) + "</node>\n")
            done += 1
            if progress and done % PROGRESS_EVERY == 0:
                progress("export graphml", done, total)
        ends = G.graph["edge_ends"]
        for _, _, eid, attrs in G.edges(keys=True, data=True):
            source, target = ends[eid]
            handle.write(f"<edge id={quoteattr(eid)} source={quoteattr(source)} "
                         f"target={quoteattr(target)}>"
                         + "".join(_data(k, attrs[k] if attrs[k] is not None else "")
                                   for k in EDGE_KEYS) + "</edge>\n")
            done += 1
            if progress and done % PROGRESS_EVERY == 0:
                progress("export graphml", done, total)
        handle.write("</graph>\n</graphml>\n")
    if progress:
        progress("export graphml", total, total)
    return {"nodes": G.number_of_nodes(), "edges": G.number_of_edges()}
