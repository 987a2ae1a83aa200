"""The query index against plain networkx reachability, and the topology against generator truth.

The oracle here never uses gridtopo's own traversal: it is ``networkx.node_connected_component``
on the graph of conducting edges, built from the same rows.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import networkx as nx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
from gridtopo.synthetic import generate, parse_defect_rates
from gridtopo.topology.graph import (
    UnknownDeviceError,
    build_graph,
    energized_nodes,
    graph_from_frames,
    supply_nodes,
)
from gridtopo.topology.index import (
    CUSTOMER_SCHEMA,
    build_index,
    index_from_frames,
    read_index,
    save_index,
)
from gridtopo.topology.queries import (
    SwitchingError,
    impact,
    impact_customers,
    impact_transformers,
    upstream,
)

SWITCHING = ("switch", "breaker", "fuse", "recloser")


def oracle_supplied(edges: pl.DataFrame, roots: list[str], opened: set[str],
                    closed: Collection[str] = frozenset()) -> set[str]:
    """Nodes connected to ``roots`` through edges that conduct with ``opened`` open and the
    normally-open switches ``closed`` closed."""
    H = nx.Graph()
    H.add_nodes_from(roots)
    for eid, kind, _, u, v, nopen, ins in edges.iter_rows():
        if ins and eid not in opened and (not (nopen and kind in SWITCHING) or eid in closed):
            H.add_edge(u, v)
    return set().union(*(nx.node_connected_component(H, r) for r in roots)) if roots else set()


def _feeder_tree(draw: st.DrawFn, f: int, src: str, edges: list[tuple[Any, ...]],
                 transformers: list[tuple[str, str]], customers: list[tuple[str, str, int]]
                 ) -> list[str]:
    """A random tree of 1–25 nodes below ``src`` for feeder ``F{f}``, with transformers and
    customers (some closed accounts) and some out-of-service edges; returns its nodes."""
    nodes = [src]
    for i in range(draw(st.integers(1, 25))):
        parent = nodes[draw(st.integers(0, len(nodes) - 1))]
        node = f"F{f}N{i}"
        kind = draw(st.sampled_from(("line", "cable", "switch", "fuse", "recloser")))
        edges.append((f"E{len(edges)}", kind, f"F{f}", parent, node, 0,
                      int(draw(st.integers(0, 12)) > 0)))
        nodes.append(node)
        if draw(st.booleans()):
            tid = f"T{f}_{i}"
            transformers.append((tid, node))
            for c in range(draw(st.integers(0, 4))):
                customers.append((f"C{f}_{i}_{c}", tid, int(c != 3)))
    return nodes


def _frames(edges: list[tuple[Any, ...]], sources: list[tuple[str, str, str]],
            transformers: list[tuple[str, str]], customers: list[tuple[str, str, int]],
            roots: set[str]) -> dict[str, pl.DataFrame]:
    return {
        "edges": pl.DataFrame(edges, schema=EDGE_SCHEMA, orient="row"),
        "sources": pl.DataFrame(sources, schema=SOURCE_SCHEMA, orient="row"),
        "transformers": pl.DataFrame(transformers, schema=TRANSFORMER_SCHEMA, orient="row"),
        "customers": pl.DataFrame(customers, schema=CUSTOMER_SCHEMA, orient="row"),
        "roots": pl.DataFrame({"node": sorted(roots)}, schema={"node": pl.Utf8}),
    }


@st.composite
def radial_networks(draw: st.DrawFn, meshed: bool = False, feeders: tuple[int, int] = (1, 3),
                    ties: tuple[int, int] = (0, 3)) -> dict[str, pl.DataFrame]:
    """Feeders of random trees, with ties, out-of-service edges and (if meshed) loops; the
    numbers of feeders and of ties are drawn from the given ranges. ``roots`` are the station
    buses where supply enters (two, each shared by every other feeder)."""
    n_feeders = draw(st.integers(*feeders))
    edges: list[tuple[Any, ...]] = []
    sources: list[tuple[str, str, str]] = []
    transformers: list[tuple[str, str]] = []
    customers: list[tuple[str, str, int]] = []
    nodes_of: list[list[str]] = []
    for f in range(n_feeders):
        fid, bus, src = f"F{f}", f"BUS{f % 2}", f"S{f}"
        edges.append((f"E{len(edges)}", "breaker", fid, bus, src, 0, 1))
        sources.append((fid, src, "ST"))
        nodes_of.append(_feeder_tree(draw, f, src, edges, transformers, customers))
    for _ in range(draw(st.integers(*ties))):
        a = draw(st.sampled_from(nodes_of[draw(st.integers(0, n_feeders - 1))]))
        b = draw(st.sampled_from(nodes_of[draw(st.integers(0, n_feeders - 1))]))
        edges.append((f"E{len(edges)}", "switch", None, a, b, 1, int(draw(st.integers(0, 5)) > 0)))
    if meshed:
        for _ in range(draw(st.integers(1, 3))):
            nodes = nodes_of[draw(st.integers(0, n_feeders - 1))]
            a, b = draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))
            edges.append((f"E{len(edges)}", "line", None, a, b, 0, 1))
    roots = {f"BUS{f % 2}" for f in range(n_feeders)}
    return _frames(edges, sources, transformers, customers, roots)


@st.composite
def multi_source_networks(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    """Components fed from 1–3 sources: 1–3 station buses (one station each) joined by bus
    couplers (breakers, closed or open), 1–5 feeders, most fed through a feeder breaker from
    a bus and some straight at their source node (no breaker: supply enters there), closed
    paths between feeders (rings), loops within feeders and normally-open ties. ``roots`` are
    where supply enters by construction: the buses with a feeder breaker and the source nodes
    of the feeders without one."""
    n_buses, n_feeders = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    edges: list[tuple[Any, ...]] = []
    sources: list[tuple[str, str, str]] = []
    transformers: list[tuple[str, str]] = []
    customers: list[tuple[str, str, int]] = []
    nodes_of: list[list[str]] = []
    roots: set[str] = set()
    for f in range(n_feeders):
        fid, src, bus = f"F{f}", f"S{f}", draw(st.integers(0, n_buses - 1))
        if draw(st.integers(0, 3)):
            edges.append((f"E{len(edges)}", "breaker", fid, f"BUS{bus}", src, 0, 1))
            roots.add(f"BUS{bus}")
        else:
            roots.add(src)
        sources.append((fid, src, f"ST{bus}"))
        nodes_of.append(_feeder_tree(draw, f, src, edges, transformers, customers))
    for a in range(n_buses):
        for b in range(a + 1, n_buses):
            for _ in range(draw(st.integers(0, 2))):
                edges.append((f"E{len(edges)}", "breaker", None, f"BUS{a}", f"BUS{b}",
                              int(draw(st.booleans())), int(draw(st.integers(0, 5)) > 0)))
    every = [n for nodes in nodes_of for n in nodes]
    for _ in range(draw(st.integers(0, 3))):  # closed paths between feeders
        edges.append((f"E{len(edges)}", draw(st.sampled_from(("line", "cable", "switch"))),
                      None, draw(st.sampled_from(every)), draw(st.sampled_from(every)), 0,
                      int(draw(st.integers(0, 5)) > 0)))
    for _ in range(draw(st.integers(0, 2))):  # loops within a feeder
        nodes = nodes_of[draw(st.integers(0, n_feeders - 1))]
        edges.append((f"E{len(edges)}", "line", None, draw(st.sampled_from(nodes)),
                      draw(st.sampled_from(nodes)), 0, 1))
    for _ in range(draw(st.integers(0, 3))):  # normally-open ties
        edges.append((f"E{len(edges)}", "switch", None, draw(st.sampled_from(every)),
                      draw(st.sampled_from(every)), 1, int(draw(st.integers(0, 5)) > 0)))
    return _frames(edges, sources, transformers, customers, roots)


def roots_of(net: dict[str, pl.DataFrame]) -> list[str]:
    """Where supply enters ``net`` by construction, checked against gridtopo's rule."""
    roots = net["roots"]["node"].to_list()
    assert set(supply_nodes(net["edges"], net["sources"]).values()) == set(roots)
    return roots


def _check_every_device(net: dict[str, pl.DataFrame], sets: list[tuple[int, ...]]) -> None:
    """Every single device and the device sets ``sets`` (edge numbers modulo the count): the
    index's dead nodes, customers and transformers equal networkx's, as sets."""
    edges, customers = net["edges"], net["customers"]
    index = index_from_frames(net["edges"], net["sources"], net["transformers"], customers)
    roots = roots_of(net)
    base = oracle_supplied(edges, roots, set())
    tr_node = dict(net["transformers"].iter_rows())
    active = customers.filter(pl.col("active") == 1)
    ids = edges["edge_id"].to_list()
    cases = [[e] for e in ids] + [list(dict.fromkeys(ids[i % len(ids)] for i in numbers))
                                  for numbers in sets]
    for devices in cases:
        dead = base - oracle_supplied(edges, roots, set(devices))
        result = impact(index, devices)
        got = {index.node_ids[n].decode() for n in index.order[result.positions]}
        assert got == dead, devices
        want = sorted(c for c, t, _ in active.iter_rows() if tr_node[t] in dead)
        assert sorted(impact_customers(index, result)) == want, devices
        assert result.customers == len(want)
        assert result.transformers == sum(node in dead for node in tr_node.values())
        assert set(impact_transformers(index, result)) == {
            t for t, node in tr_node.items() if node in dead}, devices


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(radial_networks(), st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)),
                                   max_size=5))
def test_index_equals_networkx_on_radial_networks(net: dict[str, pl.DataFrame],
                                                  pairs: list[tuple[int, int]]) -> None:
    _check_every_device(net, pairs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(radial_networks(meshed=True), st.lists(st.tuples(st.integers(0, 99),
                                                        st.integers(0, 99)), max_size=5))
def test_index_equals_networkx_with_loops(net: dict[str, pl.DataFrame],
                                          pairs: list[tuple[int, int]]) -> None:
    _check_every_device(net, pairs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multi_source_networks(), st.lists(st.lists(st.integers(0, 199), min_size=2, max_size=5)
                                         .map(tuple), max_size=6))
def test_index_equals_networkx_with_several_sources(net: dict[str, pl.DataFrame],
                                                    sets: list[tuple[int, ...]]) -> None:
    """Components fed from several sources (closed couplers, closed paths between feeders of
    one or two stations, feeders without a breaker): what an opening de-energizes is what no
    remaining source reaches."""
    _check_every_device(net, sets)


@settings(max_examples=50, deadline=None)
@given(st.one_of(radial_networks(meshed=True), multi_source_networks()), st.data())
def test_energized_nodes_equals_networkx(net: dict[str, pl.DataFrame], data: st.DataObject
                                         ) -> None:
    G = graph_from_frames(net["edges"], net["sources"], net["transformers"])
    ids = net["edges"]["edge_id"].to_list()
    opened = data.draw(st.sets(st.sampled_from(ids), max_size=3))
    ties = [e for e, *_, nopen, _ in net["edges"].iter_rows() if nopen]
    closed = data.draw(st.sets(st.sampled_from(ties), max_size=2)) if ties else set()
    edges = net["edges"].with_columns(
        normal_open=pl.when(pl.col("edge_id").is_in(list(closed))).then(0)
        .otherwise(pl.col("normal_open")).cast(pl.Int8))
    roots = roots_of(net)
    assert energized_nodes(G, opened, closed) == oracle_supplied(edges, roots, opened)


def closable_ties(edges: pl.DataFrame) -> list[str]:
    """Edges a switching plan can close: normally-open, in-service switching devices."""
    return [e for e, kind, _, u, v, nopen, ins in edges.iter_rows()
            if nopen and ins and kind in SWITCHING and u != v]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.booleans().flatmap(lambda meshed: radial_networks(meshed, (2, 4), (1, 6))),
                 multi_source_networks()), st.data())
def test_impact_with_closed_ties_equals_networkx(net: dict[str, pl.DataFrame],
                                                 data: st.DataObject) -> None:
    """Opening devices and closing ties: what is dead against the normal state, and what the
    ties pick up, equal networkx reachability with the switched state."""
    edges, customers = net["edges"], net["customers"]
    index = index_from_frames(edges, net["sources"], net["transformers"], customers)
    roots = roots_of(net)
    breakers = [e for e, kind, *_ in edges.iter_rows() if kind == "breaker"]
    opened = data.draw(st.lists(st.sampled_from(breakers), unique=True)  # whole feeders dead:
                       if breakers else st.just([]))
    opened += data.draw(st.lists(st.sampled_from(edges["edge_id"].to_list()), max_size=3,
                                 unique=True).filter(lambda more: not set(more) & set(opened)))
    ties = [t for t in closable_ties(edges) if t not in opened]  # ties chained through them
    closed = data.draw(st.one_of(st.just(ties), st.lists(st.sampled_from(ties), unique=True))
                       ) if ties else []
    base = oracle_supplied(edges, roots, set())
    cut = oracle_supplied(edges, roots, set(opened))
    after = oracle_supplied(edges, roots, set(opened), set(closed))
    result = impact(index, opened, close=closed)

    def nodes(positions: Any) -> set[str]:
        return set(index.names(index.node_ids, index.order[positions]))

    assert nodes(result.positions) == base - after
    assert nodes(result.picked) == after - cut
    tr_node = dict(net["transformers"].iter_rows())
    dead = base - after
    want = sorted(c for c, t, active in customers.iter_rows() if active and tr_node[t] in dead)
    assert sorted(impact_customers(index, result)) == want
    assert set(impact_transformers(index, result)) == {
        t for t, node in tr_node.items() if node in dead}
    assert (result.customers, result.transformers) == (
        len(want), sum(node in dead for node in tr_node.values()))
    assert result.to_dict()["closed"] == closed
    ends = {e: (u, v) for e, _, _, u, v, *_ in edges.iter_rows()}
    picked = after - cut
    for entry in result.picked_up:
        u, v = ends[entry["tie"]]
        assert entry["tie"] in closed and (u in cut) != (v in cut)  # fed from its live end
    assert sum(p["nodes"] for p in result.picked_up) == len(picked)
    assert sum(p["customers"] for p in result.picked_up) == sum(
        1 for _, t, active in customers.iter_rows() if active and tr_node[t] in picked)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(radial_networks(meshed=True), multi_source_networks()))
def test_upstream_names_every_way_supply_enters(net: dict[str, pl.DataFrame]) -> None:
    """upstream's ``sources`` of every transformer equal networkx's: the conducting edges from
    a supply node into the transformer's part of the network between supply nodes, each with
    its feeder and that feeder's station."""
    edges = net["edges"]
    roots = set(roots_of(net))
    index = index_from_frames(edges, net["sources"], net["transformers"], net["customers"])
    H = nx.MultiGraph()
    for eid, kind, _, u, v, nopen, ins in edges.iter_rows():
        if ins and u != v and not (nopen and kind in SWITCHING):
            H.add_edge(u, v, key=eid)
    inner = H.subgraph(n for n in H if n not in roots)
    supplied = oracle_supplied(edges, sorted(roots), set())
    feeder_of = {e: f for e, _, f, *_ in edges.iter_rows()}
    station_of = {f: st for f, _, st in net["sources"].iter_rows()}
    for tid, node in net["transformers"].iter_rows():
        got = upstream(index, tid)["sources"]
        if node not in supplied:
            assert got == [], tid
            continue
        part = nx.node_connected_component(inner, node)
        want = {(r, key) for n in part for r, keyed in H.adj[n].items() if r in roots
                for key in keyed}
        assert {(s["supply_node"], s["edge_id"]) for s in got} == want, tid
        for s in got:
            if feeder_of[s["edge_id"]] is not None:
                assert s["feeder_id"] == feeder_of[s["edge_id"]]
                assert s["station_id"] == station_of[s["feeder_id"]]


@pytest.mark.parametrize("ring", [False, True])
def test_a_closed_coupler_joins_two_stations(ring: bool) -> None:
    """Two stations' buses joined by a closed coupler (and, with ``ring``, their feeders by a
    closed ring): opening the coupler de-energizes nothing; with the ring no single opening
    de-energizes more than the spur beyond it, and upstream names both feeders as feeding
    the ring in parallel."""
    rows = [("B0", "breaker", "F0", "BUS0", "S0", 0, 1),
            ("B1", "breaker", "F1", "BUS1", "S1", 0, 1),
            ("CPL", "breaker", None, "BUS0", "BUS1", 0, 1),
            ("L0", "line", "F0", "S0", "N0", 0, 1),
            ("L1", "line", "F1", "S1", "N1", 0, 1),
            ("SPUR", "fuse", "F1", "N1", "N2", 0, 1)]
    if ring:
        rows.append(("RING", "switch", None, "N0", "N1", 0, 1))
    edges = pl.DataFrame(rows, schema=EDGE_SCHEMA, orient="row")
    sources = pl.DataFrame([("F0", "S0", "A"), ("F1", "S1", "B")], schema=SOURCE_SCHEMA,
                           orient="row")
    transformers = pl.DataFrame([("T0", "N0"), ("T1", "N1"), ("T2", "N2")],
                                schema=TRANSFORMER_SCHEMA, orient="row")
    customers = pl.DataFrame([("C0", "T0", 1), ("C1", "T1", 1), ("C2", "T2", 1)],
                             schema=CUSTOMER_SCHEMA, orient="row")
    index = index_from_frames(edges, sources, transformers, customers)

    def out(*devices: str) -> list[str]:
        return sorted(impact_customers(index, impact(index, list(devices))))

    assert out("CPL") == [] and out("SPUR") == ["C2"] and out("B0", "B1") == ["C0", "C1", "C2"]
    up = upstream(index, "T2")
    assert up["path"][0]["edge_id"] == "SPUR" and up["energized"] is True
    entries = [(s["feeder_id"], s["station_id"], s["edge_id"]) for s in up["sources"]]
    assert upstream(index, "BUS1")["sources"] == [
        {"feeder_id": "F1", "station_id": "B", "supply_node": "BUS1", "edge_id": None}]
    if not ring:
        assert (out("B0"), out("B1"), out("CPL", "B0")) == (["C0"], ["C1", "C2"], ["C0"])
        assert entries == [("F1", "B", "B1")]
        return
    assert [out(d) for d in ("B0", "B1", "L0", "L1", "RING")] == [[]] * 5
    assert out("B0", "RING") == ["C0"] and out("L1", "RING") == ["C1", "C2"]
    assert entries == [("F0", "A", "B0"), ("F1", "B", "B1")]


def test_closing_what_is_not_a_normally_open_switch_is_an_error() -> None:
    edges = pl.DataFrame([("BRK", "breaker", "F", "BUS", "S", 0, 1),
                          ("L1", "line", "F", "S", "A", 1, 1),
                          ("SW", "switch", "F", "A", "B", 0, 1),
                          ("TIE", "switch", None, "B", "C", 1, 1),
                          ("OLD", "switch", None, "A", "C", 1, 0),
                          ("LOOP", "fuse", None, "C", "C", 1, 1)], schema=EDGE_SCHEMA,
                         orient="row")
    sources = pl.DataFrame([("F", "S", "ST")], schema=SOURCE_SCHEMA, orient="row")
    transformers = pl.DataFrame([("T", "C")], schema=TRANSFORMER_SCHEMA, orient="row")
    index = index_from_frames(edges, sources, transformers,
                              pl.DataFrame([("K", "T", 1)], schema=CUSTOMER_SCHEMA,
                                           orient="row"))
    assert impact(index, [], close=["TIE"]).picked_up[0]["customers"] == 1  # an island fed
    for device, why in (("L1", "a line, not a switching device"),
                        ("SW", "a normally closed switch"), ("OLD", "out of service"),
                        ("LOOP", "joins a node to itself")):
        with pytest.raises(SwitchingError, match=f"{device} \\({why}\\)"):
            impact(index, ["BRK"], close=["TIE", device])
    with pytest.raises(SwitchingError, match="both opened and closed: TIE"):
        impact(index, ["TIE"], close=["TIE"])
    with pytest.raises(UnknownDeviceError, match="NOPE"):
        impact(index, ["SW"], close=["NOPE"])


@pytest.mark.parametrize("flip", [False, True])
def test_a_chain_of_closed_ties_feeds_every_dead_feeder_from_the_live_one(flip: bool) -> None:
    """F0 feeds F1 through T1 and F1 feeds F2 through T2, whichever way round the ties are
    drawn; the nearest tie is credited."""
    rows = []
    for f in range(3):
        rows += [(f"BRK{f}", "breaker", f"F{f}", f"BUS{f}", f"S{f}", 0, 1),
                 (f"L{f}", "line", f"F{f}", f"S{f}", f"N{f}", 0, 1)]
    ends = [("N0", "N1"), ("N1", "N2")]
    for i, (a, b) in enumerate(ends, 1):
        rows.append((f"T{i}", "switch", None, *((b, a) if flip else (a, b)), 1, 1))
    edges = pl.DataFrame(rows, schema=EDGE_SCHEMA, orient="row")
    sources = pl.DataFrame([(f"F{f}", f"S{f}", "ST") for f in range(3)], schema=SOURCE_SCHEMA,
                           orient="row")
    transformers = pl.DataFrame([(f"TR{f}", f"N{f}") for f in range(3)],
                                schema=TRANSFORMER_SCHEMA, orient="row")
    customers = pl.DataFrame([(f"C{f}", f"TR{f}", 1) for f in range(3)], schema=CUSTOMER_SCHEMA,
                             orient="row")
    index = index_from_frames(edges, sources, transformers, customers)
    result = impact(index, ["BRK1", "BRK2"], close=["T2", "T1"])
    assert result.customers == 0
    assert [(p["tie"], p["via_feeder"], p["transformer_ids"]) for p in result.picked_up] == [
        ("T1", "F0", ["TR1", "TR2"])]
    alone = impact(index, ["BRK1", "BRK2"], close=["T2"])
    assert (alone.customers, alone.picked_up) == (2, [])


def test_unknown_devices_are_named() -> None:
    edges = pl.DataFrame([("E0", "breaker", "F0", "BUS", "S0", 0, 1),
                          ("E1", "line", "F0", "S0", "N1", 0, 1)], schema=EDGE_SCHEMA,
                         orient="row")
    sources = pl.DataFrame([("F0", "S0", "ST")], schema=SOURCE_SCHEMA, orient="row")
    transformers = pl.DataFrame([("T1", "N1")], schema=TRANSFORMER_SCHEMA, orient="row")
    G = graph_from_frames(edges, sources, transformers)
    with pytest.raises(UnknownDeviceError, match="NOPE"):
        energized_nodes(G, ["NOPE"])
    index = index_from_frames(edges, sources, transformers, pl.DataFrame(schema=CUSTOMER_SCHEMA))
    with pytest.raises(UnknownDeviceError, match="NOPE, ZZZ"):
        impact(index, ["E0", "ZZZ", "NOPE"])


# --------------------------------------------------------------------------- generator truth


def _frames_from_exports(src: Path) -> tuple[pl.DataFrame, ...]:
    """Distribution exports read straight from the generator's CSVs (no ingest involved)."""
    d = src / "distribution"
    edges = pl.read_csv(d / "edges.csv", infer_schema=False).select(
        "edge_id", "kind", "feeder_id", "from_node", "to_node",
        normal_open=(pl.col("normal_open") == "true").cast(pl.Int8),
        in_service=pl.lit(1, pl.Int8))
    sources = pl.read_csv(d / "feeders.csv", infer_schema=False).select(
        "feeder_id", "source_node", "station_id")
    transformers = pl.read_csv(d / "transformers.csv", infer_schema=False).filter(
        pl.col("status") == "in_service").select("transformer_id", "node")
    return edges, sources, transformers


@pytest.fixture(scope="module")
def defective_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network with many islands and loops (other defects off), to test against truth."""
    out = tmp_path_factory.mktemp("islands") / "src"
    generate(out, 40_000, seed=11, defects=parse_defect_rates("island=0.4,loop=0.4"))
    return out


def test_energized_equals_truth_with_islands_and_loops(defective_sources: Path) -> None:
    edges, sources, transformers = _frames_from_exports(defective_sources)
    truth = pl.read_csv(defective_sources / "truth" / "transformer_links.csv")
    truth = truth.filter(pl.col("in_export"))
    assert not truth["energized"].all(), "the fixture must hold islands"
    G = graph_from_frames(edges, sources, transformers)
    supplied = energized_nodes(G)
    index = index_from_frames(edges, sources, transformers,
                              pl.DataFrame(schema=CUSTOMER_SCHEMA))
    live = set(index.names(index.node_ids, index.order[:index.n_energized]))
    assert index.meta["chords"] != 0, "the fixture must hold loops"
    for tid, node, energized in truth.select("transformer_id", "node", "energized").iter_rows():
        assert (node in supplied) == energized, tid
        assert (node in live) == energized, tid
        assert tid in G.nodes[node]["transformers"], tid
    assert sum(len(d["transformers"]) for _, d in G.nodes(data=True)) == transformers.height


def test_model_energized_equals_truth(model_engine: Engine, synthetic_sources: Path,
                                      tmp_path: Path) -> None:
    truth = pl.read_csv(synthetic_sources / "truth" / "transformer_links.csv")
    G = build_graph(model_engine)
    supplied = energized_nodes(G)
    index = save_index(build_index(model_engine), tmp_path / "idx")
    loaded = read_index(index)
    live = set(loaded.names(loaded.node_ids, loaded.order[:loaded.n_energized]))
    hanging = {t for n in G.nodes for t in G.nodes[n]["transformers"]}
    checked = 0
    for tid, node, energized in truth.select("transformer_id", "node", "energized").iter_rows():
        if tid in hanging:
            assert (node in supplied) == energized == (node in live), tid
            checked += 1
    assert checked > 0.9 * truth.height
    assert not loaded.pos.flags.owndata and not loaded.pos.flags.writeable  # memory-mapped
