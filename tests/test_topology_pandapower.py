"""Agreement with pandapower: de-energized equals ``topology.unsupplied_buses`` on MV networks.

Every MV network that ships with pandapower and has HV/MV transformers or several external
grids is converted into gridtopo's distribution rows (:func:`to_gridtopo`) and every branch
outage — each line, transformer, three-winding transformer and impedance taken out of
service, each switch opened — is compared with pandapower's own answer on the modified
network, as sets of buses and of loads (gridtopo's distribution transformers). So are the
switching plans: each normally-open switch closed together with each de-energizing outage,
and outages in pairs. Each network is also checked with every normally-open switch closed
("rings closed"): mv_oberrhein's two HV/MV substations, separate components as shipped, are
then one meshed component fed from both external grids. No sampling: the largest network,
mv_oberrhein with its MV/LV substations, has 646 branches.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
from gridtopo.topology.graph import energized_nodes, graph_from_frames, supply_nodes
from gridtopo.topology.index import CUSTOMER_SCHEMA, index_from_frames
from gridtopo.topology.queries import impact, impact_transformers

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower.networks as pn
    import pandapower.topology as top

NETWORKS: dict[str, Callable[[], Any]] = {
    "cigre_mv": lambda: pn.create_cigre_network_mv(with_der=False),
    "cigre_mv_pv_wind": lambda: pn.create_cigre_network_mv(with_der="pv_wind"),
    "cigre_mv_all": lambda: pn.create_cigre_network_mv(with_der="all"),
    "mv_oberrhein_load": lambda: pn.mv_oberrhein(scenario="load"),
    "mv_oberrhein_generation": lambda: pn.mv_oberrhein(scenario="generation"),
    "mv_oberrhein_substations": lambda: pn.mv_oberrhein(include_substations=True),
    "simple_mv_open_ring_net": pn.simple_mv_open_ring_net,
    "example_simple": pn.example_simple,
    "example_multivoltage": pn.example_multivoltage,
}
BRANCHES = ("line", "trafo", "trafo3w", "impedance")
"""The branch tables the conversion knows; a network with another (dcline, tcsc, vsc, ...)
fails the test instead of being converted wrongly."""
PAIRS = 40


def _switch_kind(switch: Any) -> str:
    return "breaker" if switch.type == "CB" else "switch"


def to_gridtopo(net: Any) -> dict[str, pl.DataFrame]:
    """gridtopo's edges, sources and transformers frames for a pandapower network.

    Buses are nodes ``B{bus}``; a line, transformer or impedance is an edge, a three-winding
    transformer a star of three edges around a node of its own. A switch on a branch (``l``,
    ``t``, ``t3``) is a switching edge between the bus and the branch's own terminal node, so
    opening it cuts the branch off that bus, as in pandapower; a bus-bus switch (``b``) joins
    the two buses. Switches of type CB are breakers, the others switches. External grids (and
    slack generators) are the source feeders' nodes; loads are distribution transformers.
    """
    edges: list[tuple[Any, ...]] = []
    at_bus = {(s.et, int(s.element), int(s.bus)): (i, s) for i, s in net.switch.iterrows()
              if s.et != "b"}

    def terminal(et: str, element: int, name: str, bus: int) -> str:
        found = at_bus.get((et, element, bus))
        if found is None:
            return f"B{bus}"
        i, s = found
        node = f"{name}@{bus}"
        edges.append((f"SW{i}", _switch_kind(s), None, f"B{bus}", node, int(not s.closed), 1))
        return node

    for i, line in net.line.iterrows():
        ends = [terminal("l", int(i), f"LN{i}", int(b)) for b in (line.from_bus, line.to_bus)]
        edges.append((f"LN{i}", "line", None, *ends, 0, int(line.in_service)))
    for i, t in net.trafo.iterrows():
        ends = [terminal("t", int(i), f"TR{i}", int(b)) for b in (t.hv_bus, t.lv_bus)]
        edges.append((f"TR{i}", "line", None, *ends, 0, int(t.in_service)))
    for i, t in net.trafo3w.iterrows():
        for side in ("hv", "mv", "lv"):
            end = terminal("t3", int(i), f"T3W{i}", int(t[f"{side}_bus"]))
            edges.append((f"T3W{i}{side}", "line", None, f"T3W{i}", end, 0, int(t.in_service)))
    for i, z in net.impedance.iterrows():
        edges.append((f"IMP{i}", "line", None, f"B{int(z.from_bus)}", f"B{int(z.to_bus)}", 0,
                      int(z.in_service)))
    for i, s in net.switch[net.switch.et == "b"].iterrows():
        edges.append((f"SW{i}", _switch_kind(s), None, f"B{int(s.bus)}", f"B{int(s.element)}",
                      int(not s.closed), 1))
    slack = [int(g.bus) for _, g in net.ext_grid.iterrows() if g.in_service]
    if len(net.gen):
        slack += [int(g.bus) for _, g in net.gen.iterrows() if g.in_service and g.slack]
    sources = [(f"F{k}", f"B{bus}", f"ST{k}") for k, bus in enumerate(slack)]
    transformers = [(f"LD{i}", f"B{int(ld.bus)}") for i, ld in net.load.iterrows()]
    return {
        "edges": pl.DataFrame(edges, schema=EDGE_SCHEMA, orient="row"),
        "sources": pl.DataFrame(sources, schema=SOURCE_SCHEMA, orient="row"),
        "transformers": pl.DataFrame(transformers, schema=TRANSFORMER_SCHEMA, orient="row"),
    }


@dataclass
class Switching:
    """One case: pandapower rows to take out (``table``, row) and gridtopo's devices."""

    opened: list[tuple[str, int]]
    closed: list[int]

    def devices(self) -> tuple[list[str], list[str]]:
        """gridtopo's devices to open and to close (a closing also opened is left out)."""
        names = {"line": "LN", "trafo": "TR", "impedance": "IMP", "switch": "SW"}
        opened = []
        for table, row in self.opened:
            if table == "trafo3w":
                opened += [f"T3W{row}{side}" for side in ("hv", "mv", "lv")]
            else:
                opened.append(f"{names[table]}{row}")
        return opened, [f"SW{i}" for i in self.closed if f"SW{i}" not in opened]

    def unsupplied(self, net: Any) -> set[int]:
        """pandapower's unsupplied buses with this switching applied to ``net`` (restored)."""
        saved = []
        for table, row in self.opened:
            column = "closed" if table == "switch" else "in_service"
            saved.append((table, row, column, net[table].at[row, column]))
            net[table].at[row, column] = False
        for row in self.closed:
            saved.append(("switch", row, "closed", net.switch.at[row, "closed"]))
            net.switch.at[row, "closed"] = True
        try:
            return {int(b) for b in top.unsupplied_buses(net)}
        finally:
            for table, row, column, value in reversed(saved):
                net[table].at[row, column] = value


def agreement(net: Any) -> tuple[int, list[Switching], int]:
    """Compare gridtopo with pandapower on every case of the module docstring for ``net``:
    the number of cases, those that disagree, and how many de-energize something."""
    assert not [t for t in ("dcline", "tcsc", "vsc", "line_dc", "ssc") if t in net and
                len(net[t])], "a branch table the conversion does not know"
    assert net.bus.in_service.all()
    frames = to_gridtopo(net)
    G = graph_from_frames(**frames)
    index = index_from_frames(frames["edges"], frames["sources"], frames["transformers"],
                              pl.DataFrame(schema=CUSTOMER_SCHEMA))
    assert set(supply_nodes(frames["edges"], frames["sources"]).values()) == set(
        frames["sources"]["source_node"])
    base = energized_nodes(G)
    assert not top.unsupplied_buses(net) and all(f"B{b}" in base for b in net.bus.index)
    outages = [Switching([(table, int(i))], []) for table in (*BRANCHES, "switch")
               for i in net[table].index]
    answers = [case.unsupplied(net) for case in outages]
    pick = random.Random(13)
    cutting = [c for c, want in zip(outages, answers, strict=True) if want]
    cases = list(outages)
    ties = [int(i) for i in net.switch.index[~net.switch.closed]]
    cases += [Switching(c.opened, [t]) for t in ties for c in pick.sample(cutting, min(
        len(cutting), 20))]
    cases += [Switching([*a.opened, *b.opened], []) for a, b in (
        pick.sample(outages, 2) for _ in range(PAIRS))]
    loads = {f"LD{i}": int(bus) for i, bus in net.load.bus.items()}
    disagree = []
    de_energizing = 0
    for k, case in enumerate(cases):
        want = answers[k] if k < len(answers) else case.unsupplied(net)
        opened, closed = case.devices()
        graph_dead = base - energized_nodes(G, opened, closed)
        result = impact(index, opened, close=closed)
        index_dead = set(index.names(index.node_ids, index.order[result.positions]))
        buses = {f"B{b}" for b in want}
        if not ({n for n in graph_dead if n.startswith("B")} == buses
                and {n for n in index_dead if n.startswith("B")} == buses
                and set(impact_transformers(index, result)) == {
                    ld for ld, bus in loads.items() if bus in want}):
            disagree.append(case)
        de_energizing += bool(want)
    return len(cases), disagree, de_energizing


def rings_closed(net: Any) -> Any:
    """``net`` with every switch closed: open rings become meshes."""
    net.switch["closed"] = True
    return net


@pytest.mark.parametrize("variant", ["as shipped", "rings closed"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_outage_agrees_with_pandapower(name: str, variant: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = NETWORKS[name]()
    if variant == "rings closed":
        net = rings_closed(net)
    cases, disagree, de_energizing = agreement(net)
    assert not disagree, f"{len(disagree)} of {cases} cases disagree, e.g. {disagree[:3]}"
    assert de_energizing > 0, "the comparison must include outages that cut supply"
