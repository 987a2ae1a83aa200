"""Graph-shaped exports on both stores: GraphML, CIM RDF/XML and pandapower.

* GraphML reads into networkx with the model's edges and their attributes;
* the CIM document parses, and its Terminal → ConnectivityNode topology is the edges';
* pandapower loads the JSON, and ``unsupplied_buses`` agrees with ``energized_nodes`` in the
  normal state and with devices opened.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import networkx as nx
import pandapower as pp
import pandapower.topology as top
from click.testing import CliRunner
from sqlalchemy import Engine, text

from gridtopo.cli.main import main
from gridtopo.db.read.scope import Scope, open_view
from gridtopo.exports.cim import CIM_NS, EDGE_CLASSES, RDF_NS, export_cim, rdf_id
from gridtopo.exports.graphml import export_graphml
from gridtopo.exports.network import read_network
from gridtopo.exports.pandapower import export_pandapower
from gridtopo.topology.graph import build_graph, energized_nodes


def model_edges(engine: Engine) -> dict[str, tuple[str, str, str, bool, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT edge_id, kind, from_node, to_node, normal_open, "
                                 "in_service FROM edges")).all()
    return {r[0]: (r[1], r[2], r[3], bool(r[4]), bool(r[5])) for r in rows}


def test_scoped_graph_is_build_graph(model_engine: Engine) -> None:
    with model_engine.connect() as conn:
        G = read_network(conn, open_view(conn)).graph()
    H = build_graph(model_engine)
    assert sorted(G.edges(keys=True, data=True)) == sorted(H.edges(keys=True, data=True))
    assert G.graph["supply"] == H.graph["supply"]
    assert energized_nodes(G) == energized_nodes(H)


def test_graphml_reads_back(model_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "net.graphml"
    counts = export_graphml(model_engine, path)
    G = nx.read_graphml(path, force_multigraph=True)
    edges = model_edges(model_engine)
    assert counts["edges"] == G.number_of_edges() == len(edges)
    for u, v, key, data in G.edges(keys=True, data=True):
        kind, a, b, _, in_service = edges[key]
        assert {u, v} == {a, b} and data["kind"] == kind
        assert data["in_service"] == in_service
    energized = energized_nodes(build_graph(model_engine))
    assert {n for n, d in G.nodes(data=True) if d["energized"]} == energized
    with model_engine.connect() as conn:
        hanging = conn.execute(text("SELECT node, transformer_id FROM transformers WHERE "
                                    "status = 'in_service' AND node IS NOT NULL")).all()
    exported = {(n, t) for n, d in G.nodes(data=True) for t in d["transformers"].split(",") if t}
    assert exported == {tuple(r) for r in hanging}


def child(el: ET.Element, name: str) -> ET.Element:
    found = el.find(f"{{{CIM_NS}}}{name}")
    assert found is not None, name
    return found


def target(el: ET.Element, name: str) -> str:
    """The local id an ``rdf:resource="#…"`` property of ``el`` points at."""
    return str(child(el, name).get(f"{{{RDF_NS}}}resource"))[1:]


def test_cim_topology_matches_edges(model_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "grid.xml"
    counts = export_cim(model_engine, path, customers=True)
    root = ET.parse(path).getroot()
    about = f"{{{RDF_NS}}}ID"
    objects = {el.get(about): el for el in root if el.get(about)}
    terminals: dict[str, dict[int, str]] = defaultdict(dict)
    for el in root.iter(f"{{{CIM_NS}}}Terminal"):
        equipment = target(el, "Terminal.ConductingEquipment")
        node = target(el, "Terminal.ConnectivityNode")
        number = int(str(child(el, "ACDCTerminal.sequenceNumber").text))
        assert objects[node].tag == f"{{{CIM_NS}}}ConnectivityNode"
        terminals[equipment][number] = node
    edges = model_edges(model_engine)
    for edge_id, (kind, a, b, normal_open, _) in edges.items():
        ident = rdf_id("E", edge_id)
        assert objects[ident].tag == f"{{{CIM_NS}}}{EDGE_CLASSES[kind]}"
        assert terminals[ident] == {1: rdf_id("CN", a), 2: rdf_id("CN", b)}
        if EDGE_CLASSES[kind] != "ACLineSegment":
            flag = child(objects[ident], "Switch.normalOpen").text
            assert flag == ("true" if normal_open else "false")
    with model_engine.connect() as conn:
        n_tr, n_cu = (conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                      for t in ("transformers", "customers"))
    assert counts["PowerTransformer"] == counts["EnergyConsumer"] == n_tr
    assert counts["UsagePoint"] == n_cu
    assert counts["Terminal"] == 2 * len(edges) + 3 * n_tr
    for el in root.iter(f"{{{CIM_NS}}}UsagePoint"):  # every reference resolves
        if el.find(f"{{{CIM_NS}}}UsagePoint.Equipments") is not None:
            assert target(el, "UsagePoint.Equipments") in objects


def test_pandapower_agrees_with_energized_nodes(model_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    export_pandapower(model_engine, path)
    G = build_graph(model_engine)
    candidates = sorted(eid for _, _, eid, d in G.edges(keys=True, data=True)
                        if d["kind"] in ("breaker", "switch", "fuse", "line")
                        and d["in_service"] and not d["normal_open"])
    for opened in (0, 1, 3):  # the normal state, then one and three devices opened
        net = pp.from_json(str(path))
        devices = candidates[1:1 + 7 * opened:7]
        for device in devices:
            if device in set(net.switch.name):
                net.switch.loc[net.switch.name == device, "closed"] = False
            else:
                net.line.loc[net.line.name == device, "in_service"] = False
        unsupplied = {net.bus.name.at[b] for b in top.unsupplied_buses(net)}
        energized = energized_nodes(G, open_devices=devices)
        assert unsupplied == set(G.nodes) - energized, devices
        if opened:
            assert energized < energized_nodes(G)


def test_cli_and_scope(model_engine: Engine, model_db_url: str, tmp_path: Path) -> None:
    with model_engine.connect() as conn:
        feeder = conn.execute(text("SELECT min(feeder_id) FROM feeders")).scalar_one()
    for command, name in (("graphml", "n.graphml"), ("cim", "g.xml"),
                          ("pandapower", "p.json")):
        args = ["--db", model_db_url, "export", command, str(tmp_path / name), "--feeder",
                feeder, "--json"]
        assert CliRunner().invoke(main, args).exit_code == 0
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 2 and "--overwrite" in again.stderr
    G = nx.read_graphml(tmp_path / "n.graphml", force_multigraph=True)
    assert {d["feeder_id"] for _, _, d in G.edges(data=True)} == {feeder}
    net = pp.from_json(str(tmp_path / "p.json"))
    assert len(net.ext_grid) >= 1
    with model_engine.connect() as conn:
        G_scoped = read_network(conn, open_view(conn, Scope(feeders=(feeder,)))).graph()
    assert {net.bus.name.at[b] for b in top.unsupplied_buses(net)} == \
        set(G_scoped.nodes) - energized_nodes(G_scoped)
