"""IEC CIM (61970-301 / 61968-11, CIM100) RDF/XML of the distribution network.

Mapping of the model (namespace ``http://iec.ch/TC57/CIM100#``, prefix ``cim``):

=====================  =====================================================================
gridtopo               CIM
=====================  =====================================================================
station                ``Substation``
feeder                 ``Feeder`` (``Feeder.NormalEnergizingSubstation`` → its Substation)
connectivity node      ``ConnectivityNode`` (``ConnectivityNodeContainer`` → its Feeder)
edge line / cable      ``ACLineSegment`` (``Conductor.length`` in m)
edge breaker           ``Breaker``
edge recloser          ``Breaker`` — a recloser is a breaker that recloses; CIM100 has a
                       ``Recloser`` class, but many importers (CGMES tools) do not, and
                       gridtopo holds no reclosing settings. ``description`` says "recloser"
edge switch            ``LoadBreakSwitch``
edge fuse              ``Fuse``
switching state        ``Switch.normalOpen`` and ``Switch.open`` (= normal state)
``in_service``         ``Equipment.inService``
transformer            ``PowerTransformer`` with two ``PowerTransformerEnd``: end 1 at the
                       transformer's node (feeder voltage), end 2 at a low-voltage node
                       ``<id>.LV`` (0.4 kV); ``ratedS`` in VA from ``capacity_kva``
the 台区 load           ``EnergyConsumer`` ``<transformer>.LOAD`` at the low-voltage node
customer               ``UsagePoint`` (61968) → ``UsagePoint.Equipments`` the EnergyConsumer
                       of its reconciled transformer (only with ``customers=True``; no
                       personal data)
=====================  =====================================================================

Every conducting equipment has ``Terminal`` s (``ACDCTerminal.sequenceNumber`` 1 at
``from_node``, 2 at ``to_node``) joined to ``ConnectivityNode`` s: the bus-branch topology of
node-breaker CIM. Objects are ``rdf:ID`` = ``_`` + class prefix + the source id (characters
not allowed in an XML name escaped as ``_xHHHH_``) and carry the raw id as
``IdentifiedObject.mRID``; references are ``rdf:resource="#…"``, dropped when the target lies
outside the export's scope. The document is written as a stream, one object at a time.

>>> from gridtopo.db.read.scope import Scope
>>> counts = export_cim(engine, Path("grid.xml"), Scope(stations=("BDZ-0001",)))
>>> {c: counts[c] for c in ("Substation", "Feeder", "ConnectivityNode", "PowerTransformer")}
{'Substation': 1, 'Feeder': 2, 'ConnectivityNode': 116, 'PowerTransformer': 36}
>>> scope = Scope(feeders=("XL-000002",))
>>> export_cim(engine, Path("feeder.xml"), scope, customers=True)["UsagePoint"]
767
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

import polars as pl
from sqlalchemy import Connection, Engine

from gridtopo import __version__
from gridtopo.db.read.scope import Scope, View, open_view
from gridtopo.exports import layers
from gridtopo.exports.files import atomic_open, refuse_existing
from gridtopo.progress import ProgressCallback

CIM_NS = "http://iec.ch/TC57/CIM100#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MD_NS = "http://iec.ch/TC57/61970-552/ModelDescription/1#"
EDGE_CLASSES = {"line": "ACLineSegment", "cable": "ACLineSegment", "breaker": "Breaker",
                "recloser": "Breaker", "switch": "LoadBreakSwitch", "fuse": "Fuse"}
LV_KV = 0.4
_NOT_NAME = re.compile(r"[^\w.-]")


def rdf_id(prefix: str, raw: str) -> str:
    """An XML-name-safe ``rdf:ID``: ``rdf_id("CN", "N 1")`` → ``_CN.N_x0020_1``."""
    return f"_{prefix}." + _NOT_NAME.sub(lambda m: f"_x{ord(m.group()):04X}_", raw)


class _Writer:
    """Writes CIM objects to ``handle`` and counts them per class."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.counts: Counter[str] = Counter()

    def obj(self, cls: str, ident: str, fields: list[tuple[str, Any]],
            refs: Sequence[tuple[str, str | None]] = ()) -> None:
        parts = [f'<cim:{cls} rdf:ID="{ident}">']
        for name, value in fields:
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            parts.append(f"<cim:{name}>{escape(text)}</cim:{name}>")
        parts.extend(f'<cim:{name} rdf:resource="#{target}"/>' for name, target in refs
                     if target is not None)
        parts.append(f"</cim:{cls}>\n")
        self.handle.write("".join(parts))
        self.counts[cls] += 1

    def base_voltage(self, kv: float | None, seen: set[float]) -> str | None:
        if kv is None:
            return None
        ident = rdf_id("BV", f"{kv:g}")
        if kv not in seen:
            seen.add(kv)
            self.obj("BaseVoltage", ident, [("IdentifiedObject.name", f"{kv:g} kV"),
                                            ("BaseVoltage.nominalVoltage", kv * 1000)])
        return ident

    def terminal(self, equipment: str, number: int, node: str | None) -> None:
        self.obj("Terminal", f"{equipment}.{number}",
                 [("IdentifiedObject.name", f"T{number}"), ("ACDCTerminal.sequenceNumber",
                                                            number)],
                 [("Terminal.ConductingEquipment", equipment),
                  ("Terminal.ConnectivityNode", rdf_id("CN", node) if node else None)])


def _ident(fields: list[tuple[str, Any]], raw: str, name: str | None) -> list[tuple[str, Any]]:
    return [("IdentifiedObject.mRID", raw), ("IdentifiedObject.name", name or raw), *fields]


def export_cim(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    customers: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the network of ``scope`` as CIM RDF/XML to ``path``; return objects per class."""
    refuse_existing([path], overwrite)
    with engine.connect() as conn, atomic_open(path, "w", encoding="utf-8") as handle:
        view = open_view(conn, scope)
        handle.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<rdf:RDF xmlns:rdf="{RDF_NS}" '
            f'xmlns:cim="{CIM_NS}" xmlns:md="{MD_NS}">\n'
            f'<md:FullModel rdf:about="urn:uuid:{uuid.uuid4()}">'
            f"<md:Model.created>{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}</md:Model.created>"
            f"<md:Model.description>gridtopo {escape(__version__)} model"
            + (f" as of run {view.run}" if view.run is not None else "")
            + "</md:Model.description></md:FullModel>\n"
        )
        writer = _Writer(handle)
        _write(conn, view, writer, customers, progress)
        handle.write("</rdf:RDF>\n")
    return dict(writer.counts)


def _write(conn: Connection, view: View, w: _Writer, customers: bool,
           progress: ProgressCallback | None) -> None:
    voltages: set[float] = set()

    def frames(stage: str, query: Any, schema: layers.Schema) -> Iterator[dict[str, Any]]:
        for frame in layers.iter_frames(conn, query, schema, stage=f"cim {stage}",
                                        progress=progress):
            yield from frame.iter_rows(named=True)

    stations: set[str] = set()
    for s in frames("stations", layers.stations(view, None), layers.STATION_SCHEMA):
        stations.add(s["station_id"])
        w.obj("Substation", rdf_id("S", s["station_id"]),
              _ident([], s["station_id"], s["station_name"]))
    feeders: dict[str, float | None] = {}
    for f in frames("feeders", layers.feeders(view), layers.FEEDER_SCHEMA):
        feeders[f["feeder_id"]] = f["voltage_kv"]
        station = f["station_id"] if f["station_id"] in stations else None
        w.obj("Feeder", rdf_id("F", f["feeder_id"]), _ident([], f["feeder_id"], f["feeder_name"]),
              [("Feeder.NormalEnergizingSubstation", station and rdf_id("S", station))])

    def container(feeder: str | None) -> str | None:
        return rdf_id("F", feeder) if feeder in feeders else None

    for n in frames("nodes", layers.nodes(view), layers.NODE_SCHEMA):
        w.obj("ConnectivityNode", rdf_id("CN", n["node_id"]), _ident([], n["node_id"], None),
              [("ConnectivityNode.ConnectivityNodeContainer", container(n["feeder_id"]))])
    for e in frames("edges", layers.edges(view, None), layers.EDGE_SCHEMA):
        cls = EDGE_CLASSES[e["kind"]]
        ident = rdf_id("E", e["edge_id"])
        fields: list[tuple[str, Any]] = [("IdentifiedObject.description", e["kind"]),
                                         ("Equipment.inService", e["in_service"])]
        if cls == "ACLineSegment":
            fields.append(("Conductor.length", e["length_m"]))
        else:
            fields += [("Switch.normalOpen", bool(e["normal_open"])),
                       ("Switch.open", bool(e["normal_open"]))]
        w.obj(cls, ident, _ident(fields, e["edge_id"], None),
              [("Equipment.EquipmentContainer", container(e["feeder_id"])),
               ("ConductingEquipment.BaseVoltage",
                w.base_voltage(feeders.get(e["feeder_id"]), voltages))])
        w.terminal(ident, 1, e["from_node"])
        w.terminal(ident, 2, e["to_node"])
    consumers: set[str] = set()
    for t in frames("transformers", layers.transformers(view, None),
                    layers.TRANSFORMER_SCHEMA):
        _transformer(w, t, container(t["feeder_id"]), feeders.get(t["feeder_id"]), voltages)
        consumers.add(t["transformer_id"])
    if customers:
        schema = {**layers.CUSTOMER_SCHEMA, "transformer_id": pl.Utf8}
        for c in frames("customers", layers.customers(view, None, chain=True), schema):
            target = c["transformer_id"] if c["transformer_id"] in consumers else None
            w.obj("UsagePoint", rdf_id("UP", c["customer_id"]),
                  _ident([("UsagePoint.phaseCode", c["phase"])], c["customer_id"], None),
                  [("UsagePoint.Equipments", target and rdf_id("E", f"{target}.LOAD"))])


def _transformer(w: _Writer, t: dict[str, Any], feeder: str | None, kv: float | None,
                 voltages: set[float]) -> None:
    raw = t["transformer_id"]
    ident, lv_node = rdf_id("E", raw), f"{raw}.LV"
    in_service = t["status"] == "in_service"
    w.obj("PowerTransformer", ident,
          _ident([("Equipment.inService", in_service)], raw, t["transformer_name"]),
          [("Equipment.EquipmentContainer", feeder)])
    w.obj("ConnectivityNode", rdf_id("CN", lv_node), _ident([], lv_node, None),
          [("ConnectivityNode.ConnectivityNodeContainer", feeder)])
    rated = t["capacity_kva"] * 1000 if t["capacity_kva"] is not None else None
    for number, node, end_kv in ((1, t["node"], kv), (2, lv_node, LV_KV)):
        w.terminal(ident, number, node)
        w.obj("PowerTransformerEnd", f"{ident}.W{number}",
              [("IdentifiedObject.name", f"W{number}"), ("TransformerEnd.endNumber", number),
               ("PowerTransformerEnd.ratedS", rated),
               ("PowerTransformerEnd.ratedU", end_kv * 1000 if end_kv else None)],
              [("PowerTransformerEnd.PowerTransformer", ident),
               ("TransformerEnd.Terminal", f"{ident}.{number}"),
               ("TransformerEnd.BaseVoltage", w.base_voltage(end_kv, voltages))])
    load = rdf_id("E", f"{raw}.LOAD")
    w.obj("EnergyConsumer", load, _ident([("Equipment.inService", in_service)],
                                         f"{raw}.LOAD", t["transformer_name"]),
          [("Equipment.EquipmentContainer", feeder),
           ("ConductingEquipment.BaseVoltage", w.base_voltage(LV_KV, voltages))])
    w.terminal(load, 1, lv_node)
