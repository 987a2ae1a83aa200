"""The steady-state hypothesis (SSH) instance file: the normal switching state, which
equipment is connected, the loads and the sources' set-points.

``Switch.open`` is the normal state (normally open, or out of service); a terminal is
``connected`` when its equipment is in service. Each load is its transformer's demand
(:mod:`gridtopo.exports.demand`). Each source regulates its bus to the nominal voltage
(1.0 pu) with ``referencePriority`` 1, so every supplied island has a slack; its ``p``/``q``
are its island's load shared between the island's sources (losses come from the slack).
"""

from __future__ import annotations

from gridtopo.exports.cgmes.grid import Grid
from gridtopo.exports.cgmes.rdf import Document
from gridtopo.exports.cgmes.versions import SWITCH_CLASSES


def write(doc: Document, grid: Grid) -> None:
    """Write every SSH object of ``grid`` into ``doc``."""
    version = doc.version

    def service(in_service: bool) -> list[tuple[str, object]]:
        return [("Equipment.inService", in_service)] if version.in_service_in_ssh else []

    for ident, connected in grid.terminals.select("ident", "connected").iter_rows():
        doc.describe("Terminal", ident, [("ACDCTerminal.connected", connected)])
    for ident, kind, is_open, in_service in grid.switches.select(
            "ident", "kind", "open", "in_service").iter_rows():
        locked = [("Switch.locked", False)] if version.in_service_in_ssh else []
        doc.describe(SWITCH_CLASSES[kind], ident,
                     [*service(in_service), ("Switch.open", is_open), *locked])
    if version.in_service_in_ssh:
        for ident, in_service in grid.lines.select("ident", "in_service").iter_rows():
            doc.describe("ACLineSegment", ident, service(in_service))
        for ident, in_service in grid.transformers.select("ident", "in_service").iter_rows():
            doc.describe("PowerTransformer", ident, service(in_service))
    for load, p, q, in_service in grid.transformers.select(
            "load", "p", "q", "in_service").iter_rows():
        doc.describe("EnergyConsumer", load,
                     [*service(in_service), ("EnergyConsumer.p", p), ("EnergyConsumer.q", q)])
    for ident, control, kv, p, q in grid.injections.select(
            "ident", "control", "kv", "p", "q").iter_rows():
        doc.describe("ExternalNetworkInjection", ident, [
            *service(True), ("ExternalNetworkInjection.p", p),
            ("ExternalNetworkInjection.q", q),
            ("ExternalNetworkInjection.referencePriority", 1),
            ("RegulatingCondEq.controlEnabled", True)])
        doc.describe("RegulatingControl", control, [
            ("RegulatingControl.discrete", False), ("RegulatingControl.enabled", True),
            ("RegulatingControl.targetDeadband", 0.0), ("RegulatingControl.targetValue", kv),
        ], enums=[("RegulatingControl.targetValueUnitMultiplier", "UnitMultiplier.k")])
