"""The state-variables (SV) instance file: a starting point, not a solved state.

gridtopo runs no load flow, so ``SvVoltage`` is the flat start (nominal voltage, angle 0) on
every energized topological node and 0 on dead ones; ``SvStatus`` says which equipment is in
service; a ``TopologicalIsland`` per island (topological nodes joined by anything that
conducts), with its first source's node as the angle reference where it has one. Run a load
flow on the loaded model for the real state.
"""

from __future__ import annotations

import polars as pl

from gridtopo.exports.cgmes.grid import Grid
from gridtopo.exports.cgmes.rdf import Document


def write(doc: Document, grid: Grid) -> None:
    """Write every SV object of ``grid`` into ``doc``."""
    for ident, kv, energized in grid.topological_nodes.select(
            "ident", "kv", "energized").iter_rows():
        doc.define("SvVoltage", f"{ident}.SV",
                   [("SvVoltage.v", kv if energized else 0.0), ("SvVoltage.angle", 0.0)],
                   [("SvVoltage.TopologicalNode", ident)], identified=False)
    status = grid.terminals.filter(pl.col("seq") == 1).select("equipment", "connected")
    for equipment, in_service in status.iter_rows():
        doc.define("SvStatus", f"{equipment}.SvStatus", [("SvStatus.inService", in_service)],
                   [("SvStatus.ConductingEquipment", equipment)], identified=False)
    members = dict(grid.topological_nodes.group_by("island").agg("ident").iter_rows())
    for island, ident, angle_ref in grid.islands.select(
            "island", "ident", "angle_ref").iter_rows():
        doc.define("TopologicalIsland", ident, [("IdentifiedObject.name", ident[4:])], [
            ("TopologicalIsland.AngleRefTopologicalNode", angle_ref),
            *(("TopologicalIsland.TopologicalNodes", tn) for tn in sorted(members[island]))])
