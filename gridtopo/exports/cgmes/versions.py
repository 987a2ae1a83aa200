"""The two CGMES versions gridtopo writes: namespaces, profile URIs and class choices.

=================  ================================================  ===========================
                   2.4.15 (CIM16, ENTSO-E)                           3.0 (CIM100, IEC 61970-600)
=================  ================================================  ===========================
``cim`` namespace  ``http://iec.ch/TC57/2013/CIM-schema-cim16#``      ``http://iec.ch/TC57/CIM100#``
EQ profiles        EquipmentCore/3/1 + EquipmentOperation/3/1         CoreEquipment-EU/3.0
                   (connectivity nodes are an Operation class)
TP, SSH, SV        Topology/4/1, SteadyStateHypothesis/1/1,           Topology-EU, SSH-EU,
                   StateVariables/4/1                                 StateVariables-EU (3.0)
``mRID``           not written (the ``rdf:ID`` is the identity)       ``IdentifiedObject.mRID``
in service         ``ACDCTerminal.connected`` (SSH), ``SvStatus``      also ``Equipment.inService``
=================  ================================================  ===========================

Neither version's equipment profile has a ``Feeder`` class (it is in the CIM UML, not in the
CGMES profiles), so a feeder is a ``Line`` (its conductors) and a ``VoltageLevel`` of its line
junctions; see :mod:`gridtopo.exports.cgmes.grid`. Switching devices (:data:`SWITCH_CLASSES`)
are the same classes in both versions: a recloser is a ``Breaker`` (no profile has
``Recloser``), and a fuse is a plain ``Switch`` — 3.0 has ``Fuse``, but neither pypowsybl
(1.16) nor pandapower's converter (3.5) reads it: fuses written as ``Fuse`` vanish on import
and cut off every transformer behind them.

>>> SWITCH_CLASSES["fuse"], SWITCH_CLASSES["recloser"]
('Switch', 'Breaker')
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILES = ("EQ", "TP", "SSH", "SV")
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MD_NS = "http://iec.ch/TC57/61970-552/ModelDescription/1#"


@dataclass(frozen=True)
class Version:
    """What differs between the CGMES versions in what gridtopo writes."""

    name: str
    cim_ns: str
    extension_prefix: str
    extension_ns: str
    profiles: dict[str, tuple[str, ...]]
    mrid: bool
    in_service_in_ssh: bool


SWITCH_CLASSES = {"breaker": "Breaker", "recloser": "Breaker", "switch": "LoadBreakSwitch",
                  "fuse": "Switch"}
"""The CGMES class of each gridtopo switching device kind (see the module doc)."""


VERSIONS: dict[str, Version] = {
    "2.4.15": Version(
        name="2.4.15",
        cim_ns="http://iec.ch/TC57/2013/CIM-schema-cim16#",
        extension_prefix="entsoe",
        extension_ns="http://entsoe.eu/CIM/SchemaExtension/3/1#",
        profiles={
            "EQ": ("http://entsoe.eu/CIM/EquipmentCore/3/1",
                   "http://entsoe.eu/CIM/EquipmentOperation/3/1"),
            "TP": ("http://entsoe.eu/CIM/Topology/4/1",),
            "SSH": ("http://entsoe.eu/CIM/SteadyStateHypothesis/1/1",),
            "SV": ("http://entsoe.eu/CIM/StateVariables/4/1",),
        },
        mrid=False,
        in_service_in_ssh=False,
    ),
    "3.0": Version(
        name="3.0",
        cim_ns="http://iec.ch/TC57/CIM100#",
        extension_prefix="eu",
        extension_ns="http://iec.ch/TC57/CIM100-European#",
        profiles={
            "EQ": ("http://iec.ch/TC57/ns/CIM/CoreEquipment-EU/3.0",),
            "TP": ("http://iec.ch/TC57/ns/CIM/Topology-EU/3.0",),
            "SSH": ("http://iec.ch/TC57/ns/CIM/SteadyStateHypothesis-EU/3.0",),
            "SV": ("http://iec.ch/TC57/ns/CIM/StateVariables-EU/3.0",),
        },
        mrid=True,
        in_service_in_ssh=True,
    ),
}

DEPENDS_ON = {"EQ": (), "TP": ("EQ",), "SSH": ("EQ",), "SV": ("TP", "SSH")}
"""Which instance files each profile's header names in ``Model.DependentOn``."""
