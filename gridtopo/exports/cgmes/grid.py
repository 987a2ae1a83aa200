"""The network of an export's scope laid out as CGMES objects, before any profile is written.

Every profile file describes the same objects (EQ defines them, TP, SSH and SV add to them),
so the layout is computed once, here, as polars frames: containers, connectivity nodes,
equipment with its electrical parameters (:mod:`gridtopo.exports.electrical`) and loads
(:mod:`gridtopo.exports.demand`), terminals, topological nodes (connectivity nodes joined by
closed switches) and topological islands (joined by anything that conducts).

Identifiers are ``rdf_id(prefix, source id)`` (:func:`gridtopo.exports.cim.rdf_id`), readable
and stable between exports: ``_CN.<node>``, ``_E.<edge or transformer>``,
``_E.<transformer>.LOAD``, ``_VL.<feeder>``, ``_L.<feeder>``, ``_S.<station>``,
``_DS.<transformer>`` (the distribution substation a transformer stands in), ``_TN.<node>``
(named by the smallest node id it joins), ``_ENI.<node>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import Connection

from gridtopo.db.read.scope import View
from gridtopo.exports import electrical, layers
from gridtopo.exports.cim import rdf_id
from gridtopo.exports.demand import LoadModel, transformer_demand
from gridtopo.exports.network import ScopedNetwork, read_network
from gridtopo.topology.graph import supply_nodes

UNASSIGNED = ".unassigned"
"""Source id of the substation and voltage level that hold what has no feeder (or whose feeder
has no station) in the scope."""
OMEGA = 2 * math.pi * 50.0
SOURCE_LIMIT_MW = 9999.0
"""Active and reactive limits of a feeder's supply: the grid above is not the study's limit."""
LINE_KINDS = ("line", "cable")
SWITCH_KINDS = ("switch", "breaker", "recloser", "fuse")


def _ids(prefix: str, raws: pl.Series | list[str]) -> list[str]:
    return [rdf_id(prefix, r) for r in raws]


def _collect(conn: Connection, query: Any, schema: layers.Schema) -> pl.DataFrame:
    frames = list(layers.iter_frames(conn, query, schema))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


@dataclass(frozen=True)
class Grid:
    """The CGMES objects of one export (see the module doc); every frame has an ``ident``."""

    run: int | None
    base_voltages: list[float]
    substations: pl.DataFrame
    voltage_levels: pl.DataFrame
    line_containers: pl.DataFrame
    nodes: pl.DataFrame
    lines: pl.DataFrame
    switches: pl.DataFrame
    transformers: pl.DataFrame
    injections: pl.DataFrame
    terminals: pl.DataFrame
    topological_nodes: pl.DataFrame
    islands: pl.DataFrame


def base_voltage_id(kv: float) -> str:
    """``_BV.10`` for 10 kV, ``_BV.0.4`` for 0.4 kV."""
    return rdf_id("BV", f"{kv:g}")


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component label of each of ``n`` vertices joined by the pairs ``a[i]``–``b[i]``."""
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@dataclass(frozen=True)
class _Layout:
    """The containers of :func:`build_grid` and where every node and transformer stands."""

    substations: pl.DataFrame  # ident, name
    voltage_levels: pl.DataFrame  # ident, name, substation, kv
    nodes: pl.DataFrame  # node, vl, kv
    site: dict[str, str]  # transformer_id -> substation


def _layout(network: ScopedNetwork, stations: pl.DataFrame, nodes: pl.DataFrame,
            transformers: pl.DataFrame, supply: dict[str, str]) -> _Layout:
    """Substations and voltage levels, and the voltage level of every node (see
    :func:`build_grid`); ``supply`` is ``{feeder: node where its supply enters}``."""
    feeders = network.feeders
    in_scope = set(feeders["feeder_id"])
    kv = feeders.select("feeder_id", kv=pl.col("voltage_kv").fill_null(electrical.DEFAULT_KV))
    nodes = (nodes.with_columns(feeder_id=pl.when(pl.col("feeder_id").is_in(list(in_scope)))
                                .then("feeder_id"))
             .join(kv, on="feeder_id", how="left")
             .with_columns(pl.col("kv").fill_null(electrical.DEFAULT_KV)))
    index = {n: i for i, n in enumerate(nodes["node_id"])}
    switches = network.edges.filter(pl.col("kind").is_in(SWITCH_KINDS))
    group = _components(len(index), np.array([index[n] for n in switches["from_node"]],
                                             dtype=np.int64),
                        np.array([index[n] for n in switches["to_node"]], dtype=np.int64))
    # what stands at a node: a station (its bus or a feeder's source), a transformer
    entry = pl.DataFrame({"feeder_id": list(supply), "node": list(supply.values())},
                         schema={"feeder_id": pl.Utf8, "node": pl.Utf8})
    station_of = pl.concat([
        feeders.select(node="source_node", station="station_id"),
        network.sources.select(node="source_node", station="station_id"),
        network.sources.join(entry, on="feeder_id").select("node", station="station_id"),
    ]).drop_nulls().group_by("node").agg(pl.col("station").min())
    tr_of = transformers.group_by("node").agg(tid=pl.col("transformer_id").min())
    nodes = (nodes.with_columns(group=group)
             .with_columns(size=pl.len().over("group"))
             .join(station_of, left_on="node_id", right_on="node", how="left")
             .join(tr_of, left_on="node_id", right_on="node", how="left"))
    groups = nodes.filter(pl.col("size") > 1).group_by("group").agg(
        first=pl.col("node_id").min(), station=pl.col("station").min(),
        tid=pl.col("tid").min(), kv=pl.col("kv").sort_by("node_id").first())
    grouped = groups.select(
        "group", "kv", "first",
        vl=pl.col("first").map_elements(lambda n: rdf_id("VL", n), return_dtype=pl.Utf8),
        vl_name=pl.when(pl.col("station").is_not_null()).then(pl.lit("bus "))
        .otherwise(pl.lit("switches ")) + pl.col("first"),
        substation=pl.when(pl.col("station").is_not_null()).then(
            pl.col("station").map_elements(lambda n: rdf_id("S", n), return_dtype=pl.Utf8))
        .when(pl.col("tid").is_not_null()).then(
            pl.col("tid").map_elements(lambda n: rdf_id("DS", n), return_dtype=pl.Utf8))
        .otherwise(pl.col("first").map_elements(lambda n: rdf_id("SW", n),
                                                return_dtype=pl.Utf8)))
    single = nodes.filter(pl.col("size") == 1)
    feeder_names = dict(feeders.select("feeder_id", pl.coalesce("feeder_name", "feeder_id"))
                        .iter_rows())
    feeder_station = dict(feeders.select("feeder_id", "station_id").iter_rows())

    def singleton(node: str, feeder: str | None, station: str | None,
                  tid: str | None) -> tuple[str, str, str]:
        """Voltage level, its name and substation of a node no switch touches."""
        if station is not None:
            return rdf_id("VLS", station), f"bus {station}", rdf_id("S", station)
        if tid is not None:
            return rdf_id("VL", node), f"tap {node}", rdf_id("DS", tid)
        if feeder is not None:
            home = feeder_station.get(feeder) or UNASSIGNED
            return rdf_id("VLF", feeder), feeder_names[feeder], rdf_id("S", home)
        return rdf_id("VL", UNASSIGNED), "no feeder", rdf_id("S", UNASSIGNED)

    placed = [singleton(*row) for row in
              single.select("node_id", "feeder_id", "station", "tid").iter_rows()]
    single = single.with_columns(
        vl=pl.Series([p[0] for p in placed], dtype=pl.Utf8),
        vl_name=pl.Series([p[1] for p in placed], dtype=pl.Utf8),
        substation=pl.Series([p[2] for p in placed], dtype=pl.Utf8))
    node_vl = pl.concat([
        nodes.filter(pl.col("size") > 1).select("node_id", "group", "kv").join(
            grouped.select("group", "vl"), on="group").select(node="node_id", vl="vl", kv="kv"),
        single.select(node="node_id", vl="vl", kv="kv"),
    ])
    voltage_levels = pl.concat([
        grouped.select(ident="vl", name="vl_name", substation="substation", kv="kv"),
        single.group_by("vl").agg(name=pl.col("vl_name").first(),
                                  substation=pl.col("substation").first(),
                                  kv=pl.col("kv").sort_by("node_id").first())
        .select(ident="vl", name="name", substation="substation", kv="kv"),
    ])
    vl_substation = dict(voltage_levels.select("ident", "substation").iter_rows())
    node_site = {n: vl_substation[v] for n, v in node_vl.select("node", "vl").iter_rows()}
    site = {t: node_site[n] for t, n in transformers.select("transformer_id", "node").iter_rows()}
    # substations: every station, and every site a voltage level stands in
    names = {rdf_id("S", k): v for k, v in stations.select(
        "station_id", pl.coalesce("station_name", "station_id")).iter_rows()}
    names.update({rdf_id("DS", k): v for k, v in transformers.select(
        "transformer_id", pl.coalesce("transformer_name", "transformer_id")).iter_rows()
        if rdf_id("DS", k) in vl_substation.values()})
    names.update({rdf_id("S", k): k for k in feeders["station_id"].drop_nulls()
                  if rdf_id("S", k) not in names})
    names.update({rdf_id("SW", n): f"switching point {n}" for n in grouped["first"]})
    names[rdf_id("S", UNASSIGNED)] = "no station"
    used = sorted(set(vl_substation.values()) | {rdf_id("S", k) for k in stations["station_id"]})
    substations = pl.DataFrame({"ident": used, "name": [names[i] for i in used]},
                               schema={"ident": pl.Utf8, "name": pl.Utf8})
    return _Layout(substations, voltage_levels, node_vl, site)


def build_grid(conn: Connection, view: View, load_model: LoadModel = "contract") -> Grid:
    """Lay out the network of ``view`` as CGMES objects with the loads of ``load_model``.

    Voltage levels follow the switching devices, because CGMES tools (pypowsybl) build one
    node-breaker graph per voltage level and merge levels that a switch joins — a feeder per
    level would merge each station's feeders, and ties would merge whole regions into one
    level (pypowsybl refuses a level of over 1,000 nodes). So a **voltage level is a group of
    nodes joined by switching devices** (a station bus with its feeder breakers, a ring main
    unit, a pole switch, a tie, a fuse with the transformer behind it): in its station's
    substation when it holds a station bus or feeder source, else in the substation of the
    smallest transformer at it, else in a switching-point substation ``_SW.<node>``. A node no
    switch touches is in its station's bus level (a source without a feeder breaker), in a
    level of its transformer's substation (a tap), or, as a line junction, in its feeder's
    level ``_VLF.<feeder>`` in the feeder's station. Lines and transformers join levels.
    """
    network = read_network(conn, view)
    feeders = network.feeders
    stations = _collect(conn, layers.stations(view, None), layers.STATION_SCHEMA)
    nodes = _collect(conn, layers.nodes(view), layers.NODE_SCHEMA)
    demand = transformer_demand(conn, view, network.transformers, load_model)
    transformers = network.transformers.filter(pl.col("node").is_not_null())
    supply = supply_nodes(*network.graph_frames()[:2])
    layout = _layout(network, stations, nodes, transformers, supply)
    line_containers = feeders.select(
        ident=pl.Series(_ids("L", feeders["feeder_id"]), dtype=pl.Utf8),
        name=pl.coalesce("feeder_name", "feeder_id"), feeder_id="feeder_id")

    # each transformer: its site's substation, a 0.4 kV level there with its node and load
    tr = transformers.join(demand, on="transformer_id", how="left").select(
        "transformer_id", "node", "capacity_kva",
        name=pl.coalesce("transformer_name", "transformer_id"),
        in_service=pl.col("status") == "in_service",
        p=pl.col("p_mw").fill_null(0.0), q=pl.col("q_mvar").fill_null(0.0))
    lv_raw = [f"{t}.LV" for t in tr["transformer_id"]]
    tr = tr.with_columns(
        ident=pl.Series(_ids("E", tr["transformer_id"]), dtype=pl.Utf8),
        load=pl.Series(_ids("E", [f"{t}.LOAD" for t in tr["transformer_id"]]), dtype=pl.Utf8),
        substation=pl.Series([layout.site[t] for t in tr["transformer_id"]], dtype=pl.Utf8),
        lv_vl=pl.Series(_ids("VL", lv_raw), dtype=pl.Utf8),
        lv_node=pl.Series(lv_raw, dtype=pl.Utf8))
    substations = layout.substations
    vl = pl.concat([layout.voltage_levels,
                    tr.select(ident="lv_vl", name=pl.col("name") + " 0.4 kV",
                              substation="substation", kv=pl.lit(electrical.LV_KV))])

    # connectivity nodes
    node_vl = pl.concat([layout.nodes, tr.select(node="lv_node", vl="lv_vl",
                                                 kv=pl.lit(electrical.LV_KV))])
    node_vl = node_vl.with_columns(ident=pl.Series(_ids("CN", node_vl["node"]), dtype=pl.Utf8))
    cn = dict(zip(node_vl["node"], node_vl["ident"], strict=True))
    kv_of = dict(zip(node_vl["node"], node_vl["kv"], strict=True))
    vl_of = dict(zip(node_vl["node"], node_vl["vl"], strict=True))

    # lines and switching devices
    edges = network.edges.with_columns(
        ident=pl.Series(_ids("E", network.edges["edge_id"]), dtype=pl.Utf8),
        in_service=pl.col("in_service").fill_null(True),
        normal_open=pl.col("normal_open").fill_null(False))
    lines = edges.filter(pl.col("kind").is_in(LINE_KINDS))
    types = [electrical.line_type(k, kv_of.get(a)) for k, a in
             lines.select("kind", "from_node").iter_rows()]
    km = (lines["length_m"].fill_null(electrical.MIN_LENGTH_M)
          .clip(lower_bound=electrical.MIN_LENGTH_M) / 1000)
    lines = lines.with_columns(
        length_km=km,
        r=km * pl.Series([t.r_ohm_per_km for t in types], dtype=pl.Float64),
        x=km * pl.Series([t.x_ohm_per_km for t in types], dtype=pl.Float64),
        bch=km * pl.Series([t.c_nf_per_km * 1e-9 * OMEGA for t in types], dtype=pl.Float64),
        conductor=pl.Series([t.name for t in types], dtype=pl.Utf8),
        container=pl.col("feeder_id").replace_strict(
            dict(zip(line_containers["feeder_id"], line_containers["ident"], strict=True)),
            default=None, return_dtype=pl.Utf8),
        kv=pl.col("from_node").replace_strict(kv_of, return_dtype=pl.Float64))
    switches = edges.filter(pl.col("kind").is_in(SWITCH_KINDS)).with_columns(
        vl=pl.col("from_node").replace_strict(vl_of, return_dtype=pl.Utf8),
        kv=pl.col("from_node").replace_strict(kv_of, return_dtype=pl.Float64),
        open=pl.col("normal_open") | ~pl.col("in_service"))

    # transformer parameters, referred to the winding at the feeder's voltage
    hv_kv = [kv_of[n] for n in tr["node"]]
    params = [electrical.transformer_type(c) for c in tr["capacity_kva"]]
    series = [p.series_ohm(u) for p, u in zip(params, hv_kv, strict=True)]
    shunt = [p.shunt_siemens(u) for p, u in zip(params, hv_kv, strict=True)]
    tr = tr.with_columns(
        hv_kv=pl.Series(hv_kv, dtype=pl.Float64),
        rated_s=pl.Series([p.sn_mva for p in params], dtype=pl.Float64),
        r=pl.Series([s[0] for s in series], dtype=pl.Float64),
        x=pl.Series([s[1] for s in series], dtype=pl.Float64),
        g=pl.Series([s[0] for s in shunt], dtype=pl.Float64),
        b=pl.Series([s[1] for s in shunt], dtype=pl.Float64),
        p=pl.when("in_service").then("p").otherwise(0.0),
        q=pl.when("in_service").then("q").otherwise(0.0))

    # a source where each supplying feeder's supply enters
    entries = sorted({n for n in supply.values() if n in cn})
    injections = pl.DataFrame({"node": entries}, schema={"node": pl.Utf8}).with_columns(
        ident=pl.Series(_ids("ENI", entries), dtype=pl.Utf8),
        control=pl.Series(_ids("RC", entries), dtype=pl.Utf8),
        vl=pl.Series([vl_of[n] for n in entries], dtype=pl.Utf8),
        kv=pl.Series([kv_of[n] for n in entries], dtype=pl.Float64))

    terminals = pl.concat([
        *(frame.select(equipment="ident", cls=pl.lit(cls), seq=pl.lit(seq), node=end,
                       connected="in_service")
          for frame, cls in ((lines, "ACLineSegment"), (switches, "Switch"))
          for seq, end in ((1, "from_node"), (2, "to_node"))),
        tr.select(equipment="ident", cls=pl.lit("PowerTransformer"), seq=pl.lit(1),
                  node="node", connected="in_service"),
        tr.select(equipment="ident", cls=pl.lit("PowerTransformer"), seq=pl.lit(2),
                  node="lv_node", connected="in_service"),
        tr.select(equipment="load", cls=pl.lit("EnergyConsumer"), seq=pl.lit(1),
                  node="lv_node", connected="in_service"),
        injections.select(equipment="ident", cls=pl.lit("ExternalNetworkInjection"),
                          seq=pl.lit(1), node="node", connected=pl.lit(True)),
    ]).with_columns(ident=pl.concat_str("equipment", pl.lit("."), pl.col("seq").cast(pl.Utf8)),
                    cn=pl.col("node").replace_strict(cn, return_dtype=pl.Utf8))

    # topological nodes: joined by closed switches; islands: joined by anything conducting
    index = {n: i for i, n in enumerate(node_vl["node"])}

    def pairs(frame: pl.DataFrame, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([index[n] for n in frame[a]], dtype=np.int64),
                np.array([index[n] for n in frame[b]], dtype=np.int64))

    closed = switches.filter(~pl.col("open"))
    sa, sb = pairs(closed, "from_node", "to_node")
    tn_label = _components(len(index), sa, sb)
    la, lb = pairs(lines.filter("in_service"), "from_node", "to_node")
    ta, tb = pairs(tr.filter("in_service"), "node", "lv_node")
    island_label = _components(len(index), np.concatenate([sa, la, ta]),
                               np.concatenate([sb, lb, tb]))
    node_vl = node_vl.with_columns(tn_label=tn_label, island=island_label)
    tn_names = node_vl.group_by("tn_label").agg(pl.col("node").min().alias("tn_node"))
    node_vl = node_vl.join(tn_names, on="tn_label").with_columns(
        tn=pl.col("tn_node").map_elements(lambda n: rdf_id("TN", n), return_dtype=pl.Utf8))
    topological_nodes = (node_vl.filter(pl.col("node") == pl.col("tn_node"))
                         .select(ident="tn", vl="vl", kv="kv", island="island", node="node"))
    supplied = node_vl.filter(pl.col("node").is_in(entries)).group_by("island").agg(
        angle_ref=pl.col("tn").min(), sources=pl.len())
    island_load = (tr.filter("in_service").join(node_vl.select(lv_node="node", island="island"),
                                                on="lv_node")
                   .group_by("island").agg(p=pl.col("p").sum(), q=pl.col("q").sum()))
    islands = (topological_nodes.group_by("island").agg(tn_node=pl.col("node").min())
               .join(supplied, on="island", how="left")
               .join(island_load, on="island", how="left")
               .with_columns(ident=pl.col("tn_node").map_elements(
                   lambda n: rdf_id("TI", n), return_dtype=pl.Utf8))
               .sort("ident"))
    injections = injections.join(node_vl.select("node", "island"), on="node").join(
        islands.select("island", "sources", "p", "q"), on="island", how="left").with_columns(
        p=-pl.col("p").fill_null(0.0) / pl.col("sources"),
        q=-pl.col("q").fill_null(0.0) / pl.col("sources"))
    topological_nodes = topological_nodes.join(
        islands.select("island", energized=pl.col("angle_ref").is_not_null()), on="island")
    terminals = terminals.join(node_vl.select("node", "tn"), on="node")
    voltages = sorted({*vl["kv"].to_list()})
    return Grid(
        run=view.run, base_voltages=voltages, substations=substations, voltage_levels=vl,
        line_containers=line_containers, nodes=node_vl, lines=lines, switches=switches,
        transformers=tr, injections=injections, terminals=terminals.sort("ident"),
        topological_nodes=topological_nodes.sort("ident"), islands=islands,
    )
