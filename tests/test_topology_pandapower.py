"""Agreement with pandapower: de-energized equals ``topology.unsupplied_buses`` on MV networks.

pandapower's ``mv_oberrhein`` is converted into gridtopo's distribution rows — buses are
nodes, lines are edges, line switches are switch edges at the line's ends, the HV/MV
transformers conduct, ext_grid buses are feeder sources, loads are distribution transformers —
and single-line and single-switch outages are compared: a fixed sample of 90 of the 181 lines
and 90 of the 322 switches, to bound the runtime.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import polars as pl
import pytest

from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
from gridtopo.topology.graph import energized_nodes, graph_from_frames
from gridtopo.topology.index import CUSTOMER_SCHEMA, index_from_frames
from gridtopo.topology.queries import impact, impact_transformers

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandapower.networks as pn
    import pandapower.topology as top


def to_gridtopo(net: Any) -> dict[str, pl.DataFrame]:
    """gridtopo's edges, sources and transformers frames for a pandapower network."""
    edges: list[tuple[Any, ...]] = []
    ends = {(int(s.element), int(s.bus)): (f"SW{i}", bool(s.closed))
            for i, s in net.switch[net.switch.et == "l"].iterrows()}
    for i, line in net.line.iterrows():
        terminals = []
        for side, bus in (("a", int(line.from_bus)), ("b", int(line.to_bus))):
            switch = ends.get((int(i), bus))
            if switch is None:
                terminals.append(f"B{bus}")
                continue
            node = f"L{i}{side}"
            edges.append((switch[0], "switch", "F", f"B{bus}", node, int(not switch[1]), 1))
            terminals.append(node)
        edges.append((f"LN{i}", "line", "F", *terminals, 0, int(line.in_service)))
    for i, s in net.switch[net.switch.et == "b"].iterrows():
        edges.append((f"SW{i}", "switch", "F", f"B{int(s.bus)}", f"B{int(s.element)}",
                      int(not s.closed), 1))
    for i, t in net.trafo.iterrows():
        edges.append((f"TR{i}", "line", "F", f"B{int(t.hv_bus)}", f"B{int(t.lv_bus)}", 0,
                      int(t.in_service)))
    sources = [(f"F{i}", f"B{int(g.bus)}", "ST") for i, g in net.ext_grid.iterrows()]
    transformers = [(f"LD{i}", f"B{int(ld.bus)}") for i, ld in net.load.iterrows()]
    return {
        "edges": pl.DataFrame(edges, schema=EDGE_SCHEMA, orient="row"),
        "sources": pl.DataFrame(sources, schema=SOURCE_SCHEMA, orient="row"),
        "transformers": pl.DataFrame(transformers, schema=TRANSFORMER_SCHEMA, orient="row"),
    }


@pytest.fixture(scope="module")
def oberrhein() -> Any:
    return pn.mv_oberrhein()


def _pp_dead_loads(net: Any, dead: set[int]) -> set[str]:
    return {f"LD{i}" for i, bus in net.load.bus.items() if int(bus) in dead}


SAMPLE = 90


def test_single_line_and_switch_outages_agree(oberrhein: Any) -> None:
    frames = to_gridtopo(oberrhein)
    G = graph_from_frames(**frames)
    index = index_from_frames(frames["edges"], frames["sources"], frames["transformers"],
                              pl.DataFrame(schema=CUSTOMER_SCHEMA))
    base = energized_nodes(G)
    assert not top.unsupplied_buses(oberrhein)
    assert all(f"B{b}" in base for b in oberrhein.bus.index)
    pick = random.Random(5).sample
    outages = [("line", i, f"LN{i}") for i in pick(list(oberrhein.line.index), SAMPLE)]
    outages += [("switch", i, f"SW{i}") for i in pick(list(oberrhein.switch.index), SAMPLE)]
    de_energizing = 0
    for table, row, device in outages:
        column = "in_service" if table == "line" else "closed"
        frame = getattr(oberrhein, table)
        saved = frame.at[row, column]
        frame.at[row, column] = False
        try:
            unsupplied = set(top.unsupplied_buses(oberrhein))
            want_buses = {f"B{b}" for b in unsupplied}
            want_loads = _pp_dead_loads(oberrhein, unsupplied)
        finally:
            frame.at[row, column] = saved
        dead = base - energized_nodes(G, [device])
        assert {n for n in dead if n.startswith("B")} == want_buses, device
        assert set(impact_transformers(index, impact(index, [device]))) == want_loads, device
        de_energizing += bool(want_loads)
    assert de_energizing > 10, "the comparison must include outages that cut supply"
