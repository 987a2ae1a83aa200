"""The topology (TP) instance file: topological nodes — connectivity nodes joined by closed
switches in the normal switching state — and which node each connectivity node and terminal
belongs to."""

from __future__ import annotations

from gridtopo.exports.cgmes.grid import Grid, base_voltage_id
from gridtopo.exports.cgmes.rdf import Document


def write(doc: Document, grid: Grid) -> None:
    """Write every TP object of ``grid`` into ``doc``."""
    for ident, vl, kv, node in grid.topological_nodes.select(
            "ident", "vl", "kv", "node").iter_rows():
        doc.define("TopologicalNode", ident, [("IdentifiedObject.name", node)],
                   [("TopologicalNode.BaseVoltage", base_voltage_id(kv)),
                    ("TopologicalNode.ConnectivityNodeContainer", vl)])
    for ident, tn in grid.nodes.select("ident", "tn").iter_rows():
        doc.describe("ConnectivityNode", ident, refs=[("ConnectivityNode.TopologicalNode", tn)])
    for ident, tn in grid.terminals.select("ident", "tn").iter_rows():
        doc.describe("Terminal", ident, refs=[("Terminal.TopologicalNode", tn)])
