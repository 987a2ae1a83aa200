"""The equipment (EQ) instance file: containers, connectivity nodes, equipment and terminals.

Containers: a ``Substation`` per station and per distribution transformer (``_DS.…``, the
配电站 or pole-mounted site it stands in), a ``VoltageLevel`` per feeder (its connectivity
nodes and switching devices, at the feeder's voltage, in the station's substation) and per
transformer (0.4 kV), a ``Line`` per feeder for its conductors. All substations and lines are
in one ``SubGeographicalRegion``. Voltage levels carry the statutory limits (±7 % at MV,
+7 %/−10 % at 0.4 kV) so a load flow tool can flag violations.
"""

from __future__ import annotations

from gridtopo.exports import electrical
from gridtopo.exports.cgmes.grid import SOURCE_LIMIT_MW, Grid, base_voltage_id
from gridtopo.exports.cgmes.rdf import Document
from gridtopo.exports.cgmes.versions import SWITCH_CLASSES

REGION = "_GR.gridtopo"
SUB_REGION = "_SGR.gridtopo"
LOAD_RESPONSE = "_LRC.constant_power"
LIMITS = {"mv": (0.93, 1.07), "lv": (0.90, 1.07)}


def write(doc: Document, grid: Grid) -> None:
    """Write every EQ object of ``grid`` into ``doc``."""
    doc.define("GeographicalRegion", REGION, [("IdentifiedObject.name", "gridtopo")])
    doc.define("SubGeographicalRegion", SUB_REGION, [("IdentifiedObject.name", "gridtopo")],
               [("SubGeographicalRegion.Region", REGION)])
    for kv in grid.base_voltages:
        doc.define("BaseVoltage", base_voltage_id(kv),
                   [("IdentifiedObject.name", f"{kv:g} kV"), ("BaseVoltage.nominalVoltage", kv)])
    for ident, name in grid.substations.select("ident", "name").iter_rows():
        doc.define("Substation", ident, [("IdentifiedObject.name", name)],
                   [("Substation.Region", SUB_REGION)])
    for ident, name, substation, kv in grid.voltage_levels.select(
            "ident", "name", "substation", "kv").iter_rows():
        low, high = LIMITS["lv" if kv < 1 else "mv"]
        doc.define("VoltageLevel", ident,
                   [("IdentifiedObject.name", name), ("VoltageLevel.lowVoltageLimit", low * kv),
                    ("VoltageLevel.highVoltageLimit", high * kv)],
                   [("VoltageLevel.Substation", substation),
                    ("VoltageLevel.BaseVoltage", base_voltage_id(kv))])
    for ident, name in grid.line_containers.select("ident", "name").iter_rows():
        doc.define("Line", ident, [("IdentifiedObject.name", name)],
                   [("Line.Region", SUB_REGION)])
    doc.define("LoadResponseCharacteristic", LOAD_RESPONSE, [
        ("IdentifiedObject.name", "constant power"),
        ("LoadResponseCharacteristic.exponentModel", False),
        *((f"LoadResponseCharacteristic.{pq}Constant{part}", 1.0 if part == "Power" else 0.0)
          for pq in "pq" for part in ("Power", "Current", "Impedance")),
        ("LoadResponseCharacteristic.pVoltageExponent", 0.0),
        ("LoadResponseCharacteristic.qVoltageExponent", 0.0),
    ])
    for ident, node, vl in grid.nodes.select("ident", "node", "vl").iter_rows():
        doc.define("ConnectivityNode", ident, [("IdentifiedObject.name", node)],
                   [("ConnectivityNode.ConnectivityNodeContainer", vl)])
    _equipment(doc, grid)
    for ident, equipment, seq, cn in grid.terminals.select(
            "ident", "equipment", "seq", "cn").iter_rows():
        doc.define("Terminal", ident,
                   [("IdentifiedObject.name", f"T{seq}"), ("ACDCTerminal.sequenceNumber", seq)],
                   [("Terminal.ConductingEquipment", equipment),
                    ("Terminal.ConnectivityNode", cn)])


def _equipment(doc: Document, grid: Grid) -> None:
    version = doc.version
    for row in grid.lines.select("ident", "edge_id", "kind", "conductor", "r", "x", "bch",
                                 "length_km", "kv", "container").iter_rows(named=True):
        doc.define("ACLineSegment", row["ident"], [
            ("IdentifiedObject.name", row["edge_id"]),
            ("IdentifiedObject.description", f"{row['kind']} ({row['conductor']}, typical)"),
            ("ACLineSegment.r", row["r"]), ("ACLineSegment.x", row["x"]),
            ("ACLineSegment.bch", row["bch"]), ("ACLineSegment.gch", 0.0),
            ("Conductor.length", row["length_km"]),
        ], [("ConductingEquipment.BaseVoltage", base_voltage_id(row["kv"])),
            ("Equipment.EquipmentContainer", row["container"])])
    for ident, edge_id, kind, normal_open, vl, kv in grid.switches.select(
            "ident", "edge_id", "kind", "normal_open", "vl", "kv").iter_rows():
        doc.define(SWITCH_CLASSES[kind], ident, [
            ("IdentifiedObject.name", edge_id), ("IdentifiedObject.description", kind),
            ("Switch.normalOpen", normal_open), ("Switch.retained", False),
        ], [("ConductingEquipment.BaseVoltage", base_voltage_id(kv)),
            ("Equipment.EquipmentContainer", vl)])
    for t in grid.transformers.iter_rows(named=True):
        doc.define("PowerTransformer", t["ident"], [
            ("IdentifiedObject.name", t["name"]),
            ("IdentifiedObject.description", f"{t['transformer_id']}, {t['rated_s'] * 1000:g} kVA"),
        ], [("Equipment.EquipmentContainer", t["substation"])])
        for number, kv, r, x, g, b, connection in (
                (1, t["hv_kv"], t["r"], t["x"], t["g"], t["b"], "D"),
                (2, electrical.LV_KV, 0.0, 0.0, 0.0, 0.0, "Yn")):
            fields = [("IdentifiedObject.name", f"W{number}"),
                      ("TransformerEnd.endNumber", number),
                      ("PowerTransformerEnd.ratedS", t["rated_s"]),
                      ("PowerTransformerEnd.ratedU", kv),
                      ("PowerTransformerEnd.r", r), ("PowerTransformerEnd.x", x),
                      ("PowerTransformerEnd.g", g), ("PowerTransformerEnd.b", b)]
            if not version.mrid:  # 2.4.15: the clock is part of EQ (3.0: short-circuit)
                fields.append(("PowerTransformerEnd.phaseAngleClock", 0 if number == 1 else 11))
            doc.define("PowerTransformerEnd", f"{t['ident']}.W{number}", fields, [
                ("PowerTransformerEnd.PowerTransformer", t["ident"]),
                ("TransformerEnd.Terminal", f"{t['ident']}.{number}"),
                ("TransformerEnd.BaseVoltage", base_voltage_id(kv)),
            ], [("PowerTransformerEnd.connectionKind", f"WindingConnection.{connection}")])
        doc.define("EnergyConsumer", t["load"], [
            ("IdentifiedObject.name", t["name"]),
            ("IdentifiedObject.description", f"{t['transformer_id']} 台区 load"),
        ], [("EnergyConsumer.LoadResponse", LOAD_RESPONSE),
            ("ConductingEquipment.BaseVoltage", base_voltage_id(electrical.LV_KV)),
            ("Equipment.EquipmentContainer", t["lv_vl"])])
    for ident, control, node, vl, kv in grid.injections.select(
            "ident", "control", "node", "vl", "kv").iter_rows():
        doc.define("ExternalNetworkInjection", ident, [
            ("IdentifiedObject.name", f"supply {node}"),
            ("IdentifiedObject.description", "the grid above the feeder breaker"),
            ("ExternalNetworkInjection.governorSCD", 0.0),
            ("ExternalNetworkInjection.minP", -SOURCE_LIMIT_MW),
            ("ExternalNetworkInjection.maxP", SOURCE_LIMIT_MW),
            ("ExternalNetworkInjection.minQ", -SOURCE_LIMIT_MW),
            ("ExternalNetworkInjection.maxQ", SOURCE_LIMIT_MW),
        ], [("ConductingEquipment.BaseVoltage", base_voltage_id(kv)),
            ("Equipment.EquipmentContainer", vl), ("RegulatingCondEq.RegulatingControl", control)])
        doc.define("RegulatingControl", control, [("IdentifiedObject.name", f"voltage {node}")],
                   [("RegulatingControl.Terminal", f"{ident}.1")],
                   [("RegulatingControl.mode", "RegulatingControlModeKind.voltage")])
