"""CGMES round trips on both stores: what pypowsybl and pandapower's CIM converter make of the
export, against the model and against gridtopo's own outage answers.

* every instance file uses only classes and properties of its profile (checked against the
  profile schemas pandapower ships, built from the ENTSO-E/IEC RDFS), with headers that name
  the version's profile URIs and depend on each other;
* pypowsybl (both versions) loads the zip with its default parameters: switches, lines,
  transformers, loads and sources counted equal to the model, buses equal to the nodes joined
  by closed switches; its AC load flow converges on every supplied island; opening a device
  in pypowsybl cuts off exactly the transformers gridtopo says are cut off;
* pandapower's ``from_cim`` loads 2.4.15 (its 3.0 reader fails on any AC line, see README)
  with the same counts, ``runpp`` converges, and ``unsupplied_buses`` after opening a device
  is gridtopo's answer;
* cimpy (2.4.15 only) imports it without a warning.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import networkx as nx
import pandapower as pp
import pandapower.topology as top
import pypowsybl.loadflow as lf
import pypowsybl.network as pn
import pytest
from click.testing import CliRunner
from pandapower.converter.cim.cim2pp.from_cim import from_cim
from sqlalchemy import Engine, text

from gridtopo.cli.main import main
from gridtopo.db.read.asof import list_snapshots
from gridtopo.db.read.scope import Scope
from gridtopo.exports.cgmes import export_cgmes
from gridtopo.exports.cgmes.versions import MD_NS, RDF_NS, VERSIONS
from gridtopo.topology.graph import build_graph, energized_nodes

SCHEMAS = Path(pp.__file__).parent / "converter" / "cim" / "serialized_schemas"
SCHEMA_FILES = {"2.4.15": "CIM16_4.2.15_schema.json", "3.0": "CIM100_4.2.15_schema.json"}
SWITCHING = ("switch", "breaker", "recloser", "fuse")


def model(engine: Engine) -> dict[str, int]:
    """Counts of the model that the loaded networks must reproduce."""
    with engine.connect() as conn:
        def one(sql: str) -> int:
            return int(conn.execute(text(sql)).scalar_one())
        kinds = "', '".join(SWITCHING)
        return {
            "switches": one(f"SELECT count(*) FROM edges WHERE kind IN ('{kinds}')"),
            "lines": one("SELECT count(*) FROM edges WHERE kind IN ('line', 'cable')"),
            "transformers": one("SELECT count(*) FROM transformers WHERE node IS NOT NULL"),
        }


def closed_groups(G: nx.MultiGraph, transformers: int) -> int:
    """Buses of the bus-breaker view: nodes (and each transformer's 0.4 kV node) joined by
    closed switches."""
    H = nx.Graph()
    H.add_nodes_from(G.nodes)
    H.add_edges_from((u, v) for u, v, d in G.edges(data=True)
                     if d["kind"] in SWITCHING and d["in_service"] and not d["normal_open"])
    return nx.number_connected_components(H) + transformers


def cut_off(engine: Engine, G: nx.MultiGraph, opened: list[str]) -> set[str]:
    """Transformers gridtopo finds without supply once ``opened`` are open (the outage
    answer), of those with a node."""
    live = energized_nodes(G, open_devices=opened)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT transformer_id, node, status FROM transformers "
                                 "WHERE node IS NOT NULL")).all()
    return {t for t, node, status in rows if status != "in_service" or node not in live}


def devices(G: nx.MultiGraph) -> list[str]:
    """A few closed switching devices and lines, spread over the model."""
    picked = sorted(eid for _, _, eid, d in G.edges(keys=True, data=True)
                    if d["in_service"] and not d["normal_open"])
    return picked[3::max(1, len(picked) // 4)][:4]


@pytest.mark.parametrize("version", ["2.4.15", "3.0"])
def test_profiles_and_headers(model_engine: Engine, tmp_path: Path, version: str) -> None:
    path = tmp_path / "grid.zip"
    export_cgmes(model_engine, path, version=version, authority="http://grid.example/dist")
    schema = json.loads((SCHEMAS / SCHEMA_FILES[version]).read_text())
    v = VERSIONS[version]
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == [f"grid_{p}.xml" for p in ("EQ", "SSH", "SV", "TP")]
        roots = {p: ET.fromstring(archive.read(f"grid_{p}.xml")) for p in ("EQ", "TP", "SSH",
                                                                           "SV")}
    about = f"{{{RDF_NS}}}about"
    ids = {p: root.find(f"{{{MD_NS}}}FullModel").get(about) for p, root in roots.items()}
    with model_engine.connect() as conn:
        created = list_snapshots(conn)[-1].created_at
    defined: set[str] = set()
    for profile, root in roots.items():
        header = root.find(f"{{{MD_NS}}}FullModel")
        assert header is not None
        texts = {child.tag.split("}")[1]: child for child in header}
        assert [e.text for e in header.findall(f"{{{MD_NS}}}Model.profile")] == list(
            v.profiles[profile])
        assert texts["Model.modelingAuthoritySet"].text == "http://grid.example/dist"
        assert texts["Model.scenarioTime"].text == created.strftime("%Y-%m-%dT%H:%M:%SZ")
        depends = {e.get(f"{{{RDF_NS}}}resource")
                   for e in header.findall(f"{{{MD_NS}}}Model.DependentOn")}
        expected = {"EQ": set(), "TP": {ids["EQ"]}, "SSH": {ids["EQ"]},
                    "SV": {ids["TP"], ids["SSH"]}}[profile]
        assert depends == expected
        classes = schema[profile.lower()]
        labels = {f["label"] for c in classes.values() for f in c["fields"].values()}
        for el in root:
            cls = el.tag.split("}")[1]
            if cls == "FullModel":
                continue
            assert el.tag.startswith(f"{{{v.cim_ns}}}")
            if el.get(f"{{{RDF_NS}}}ID") is not None:
                assert cls in classes, (profile, cls)
                defined.add(el.get(f"{{{RDF_NS}}}ID"))
            else:
                assert cls in schema["eq"], (profile, cls)
            for prop in el:
                assert f"cim:{prop.tag.split('}')[1]}" in labels, (profile, cls, prop.tag)
    for profile, root in roots.items():  # every reference resolves to a defined object
        for el in root.iter():
            target = el.get(f"{{{RDF_NS}}}resource") or ""
            if target.startswith("#"):
                assert target[1:] in defined, (profile, target)
            if el.get(about, "").startswith("#"):
                assert el.get(about)[1:] in defined, (profile, el.get(about))
    assert ("IdentifiedObject.mRID" in ET.tostring(roots["EQ"]).decode()) == v.mrid


@pytest.mark.parametrize("version", ["2.4.15", "3.0"])
def test_pypowsybl_loads_and_computes(model_engine: Engine, tmp_path: Path,
                                      version: str) -> None:
    path = tmp_path / "grid.zip"
    export_cgmes(model_engine, path, version=version)
    counts = model(model_engine)
    G = build_graph(model_engine)
    network = pn.load(str(path))
    assert len(network.get_switches()) == counts["switches"]
    assert len(network.get_lines()) == counts["lines"]
    assert len(network.get_2_windings_transformers()) == counts["transformers"]
    assert len(network.get_loads()) == counts["transformers"]
    supplies = set(G.graph["supply"].values())
    assert len(network.get_generators()) == len(supplies)
    assert len(network.get_bus_breaker_view_buses()) == closed_groups(G, counts["transformers"])
    switches = network.get_switches()
    assert set(switches["name"]) == {e for _, _, e, d in G.edges(keys=True, data=True)
                                     if d["kind"] in SWITCHING}

    parameters = lf.Parameters(component_mode=lf.ComponentMode.ALL_CONNECTED)
    results = lf.run_ac(network, parameters)
    supplied_islands = {r.connected_component_num for r in results
                        if r.status == lf.ComponentStatus.CONVERGED}
    assert supplied_islands
    assert {r.status for r in results} <= {lf.ComponentStatus.CONVERGED,
                                            lf.ComponentStatus.NO_CALCULATION}
    buses = network.get_buses()
    generator_components = set(buses.loc[network.get_generators()["bus_id"],
                                         "connected_component"])
    assert generator_components == supplied_islands
    loads = network.get_loads(attributes=["bus_id"]).join(buses, on="bus_id")
    live = loads[loads["connected_component"].isin(generator_components)]
    vl = network.get_voltage_levels()
    vm = live["v_mag"] / live["voltage_level_id"].map(vl["nominal_v"])
    assert vm.min() > 0.85 and vm.max() < 1.01  # a lightly loaded cable may lift a node
    out = {name.removesuffix(".LOAD") for name in
           loads.index.str.removeprefix("E.")[~loads["connected_component"].isin(
               generator_components)]}
    assert out == cut_off(model_engine, G, [])

    for device in devices(G):  # an outage computed on the loaded network, diffed
        network = pn.load(str(path))
        ident = f"E.{device}"
        if ident in network.get_switches().index:
            network.update_switches(id=ident, open=True)
        else:  # a line's terminals have no switch of their own to open: take the line out
            network.remove_elements([ident])
        buses = network.get_buses()
        fed = set(buses.loc[network.get_generators()["bus_id"], "connected_component"])
        loads = network.get_loads(attributes=["bus_id"]).join(buses, on="bus_id")
        dead = loads.index[~loads["connected_component"].isin(fed)]
        assert {d.removeprefix("E.").removesuffix(".LOAD") for d in dead} == cut_off(
            model_engine, G, [device]), device


def test_pandapower_from_cim(model_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "grid.zip"
    export_cgmes(model_engine, path, version="2.4.15")
    counts = model(model_engine)
    G = build_graph(model_engine)
    net = from_cim(file_list=[str(path)], cgmes_version="2.4.15")
    assert len(net.bus) == G.number_of_nodes() + counts["transformers"]
    assert len(net.switch) == counts["switches"]
    assert len(net.line) == counts["lines"]
    assert len(net.trafo) == len(net.load) == counts["transformers"]
    assert len(net.ext_grid) == len(set(G.graph["supply"].values()))
    pp.runpp(net, numba=False)
    assert net.converged
    for device in [None, *devices(G)]:  # outages on the loaded network, diffed
        opened = [device] if device else []
        switch = net.switch["name"] == device
        line = net.line["name"] == device
        net.switch.loc[switch, "closed"] = False
        net.line.loc[line, "in_service"] = False
        unsupplied = {net.bus.name.at[b] for b in top.unsupplied_buses(net)}
        net.switch.loc[switch, "closed"] = True
        net.line.loc[line, "in_service"] = True
        lv = {f"{t}.LV" for t in cut_off(model_engine, G, opened)}
        assert unsupplied == (set(G.nodes) - energized_nodes(G, open_devices=opened)) | lv
        assert switch.sum() + line.sum() == len(opened)


def test_cli_directory_scope_and_refusal(model_engine: Engine, model_db_url: str,
                                         tmp_path: Path) -> None:
    with model_engine.connect() as conn:
        feeder = conn.execute(text("SELECT min(feeder_id) FROM feeders")).scalar_one()
        on_feeder = {r[0] for r in conn.execute(
            text("SELECT edge_id FROM edges WHERE feeder_id = :f"), {"f": feeder})}
    out = tmp_path / "study"
    args = ["--db", model_db_url, "export", "cgmes", str(out), "--version", "3.0",
            "--feeder", feeder, "--load-model", "rating", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["counts"]
    assert sorted(p.name for p in out.iterdir()) == [
        f"study_{p}.xml" for p in ("EQ", "SSH", "SV", "TP")]
    assert counts["ACLineSegment"] + sum(counts.get(c, 0) for c in (
        "Breaker", "LoadBreakSwitch", "Switch")) == len(on_feeder)
    network = pn.load(str(out / "study_EQ.xml"))
    assert set(network.get_lines()["name"]) | set(network.get_switches()["name"]) == on_feeder
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0
    bad = CliRunner().invoke(main, ["--db", model_db_url, "export", "cgmes",
                                    str(tmp_path / "x.zip"), "--version", "2.5"])
    assert bad.exit_code == 2
    assert not list(tmp_path.glob("*.partial*"))
    with pytest.raises(Exception, match="--feeder NOPE"):
        export_cgmes(model_engine, tmp_path / "y.zip", Scope(feeders=("NOPE",)))
    assert not (tmp_path / "y.zip").exists()


def test_cimpy_reads_2_4_15(model_engine: Engine, tmp_path: Path,
                            caplog: pytest.LogCaptureFixture) -> None:
    """cimpy (CGMES 2.4.15 only) imports the four files without a warning, every defined
    object with its class, the SSH state on the EQ objects."""
    import logging

    import cimpy

    out = tmp_path / "grid"
    counts = export_cgmes(model_engine, out, version="2.4.15")
    with caplog.at_level(logging.WARNING, logger="cimpy"):
        imported = cimpy.cim_import(sorted(str(p) for p in out.iterdir()), "cgmes_v2_4_15")
    assert [r for r in caplog.records if r.name.startswith("cimpy")] == []
    objects = imported["topology"]
    classes: dict[str, int] = {}
    for obj in objects.values():
        classes[type(obj).__name__] = classes.get(type(obj).__name__, 0) + 1
    assert classes == counts
    with model_engine.connect() as conn:
        edges = {r[0]: (bool(r[1]), r[2] is None or bool(r[2])) for r in conn.execute(text(
            "SELECT edge_id, normal_open, in_service FROM edges WHERE kind IN "
            "('switch', 'breaker', 'recloser', 'fuse')"))}
    for obj in objects.values():
        if type(obj).__name__ in ("Switch", "Breaker", "LoadBreakSwitch"):
            normal_open, in_service = edges[obj.name]
            assert obj.normalOpen == normal_open
            assert obj.open == (normal_open or not in_service)
        if type(obj).__name__ == "EnergyConsumer":
            assert obj.p > 0 and obj.q > 0 and obj.LoadResponse is not None
