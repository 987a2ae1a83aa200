"""A pandapower network of the distribution model, for load-flow and topology studies.

Mapping (names are the source ids, so results map back to gridtopo):

* every connectivity node of the equipment graph → a ``bus`` (``vn_kv`` = its feeder's voltage,
  10 kV when unknown);
* where each in-service feeder's supply enters (:func:`~gridtopo.topology.graph.build_graph`'s
  ``supply``: the station bus beyond the feeder breaker) → an ``ext_grid``;
* lines and cables → ``line`` from parameters (typical 10 kV overhead/cable values per km; the
  model holds no conductor types), ``length_km`` from ``length_m`` (at least 1 m),
  ``in_service`` as in the model;
* switch, breaker, recloser, fuse → a bus-bus ``switch`` (type LBS for a switch, CB for the
  others), ``closed`` = normally closed and in service; columns ``kind``, ``normal_open`` and
  ``equipment_in_service`` keep the model's values;
* in-service transformers → a ``load`` at their node, ``p_mw`` = 0.5 × capacity (a planning
  placeholder until metered demand is joined), named by transformer id.

The network is in the normal switching state, so ``pandapower.topology.unsupplied_buses``
returns exactly the buses whose nodes :func:`~gridtopo.topology.graph.energized_nodes` says are
not energized. It is built in memory (pandapower's frames), then written with
``pandapower.to_json`` under a temporary name.

>>> export_pandapower(engine, Path("net.json"), Scope(feeders=("XL-000001",)))  # doctest: +SKIP
{'bus': 46, 'ext_grid': 1, 'line': 20, 'switch': 25, 'load': 22}
"""

from __future__ import annotations

from pathlib import Path

import pandapower as pp
import polars as pl
from sqlalchemy import Engine

from gridtopo.db.read.scope import Scope, open_view
from gridtopo.exports.files import atomic_path, refuse_existing
from gridtopo.exports.network import ScopedNetwork, read_network
from gridtopo.progress import ProgressCallback

DEFAULT_KV = 10.0
LINE = {"r_ohm_per_km": 0.27, "x_ohm_per_km": 0.35, "c_nf_per_km": 10.0, "max_i_ka": 0.4}
SWITCH_TYPES = {"switch": "LBS", "breaker": "CB", "recloser": "CB", "fuse": "CB"}
LOAD_FACTOR = 0.5


def build_net(network: ScopedNetwork) -> pp.pandapowerNet:
    """The pandapower network of ``network`` (see the module doc)."""
    G = network.graph()
    edges, _, in_service_transformers = network.graph_frames()
    edges = edges.join(network.edges.select("edge_id", "length_m"), on="edge_id", how="left")
    net = pp.create_empty_network(name="gridtopo", f_hz=50.0)
    nodes = sorted(G.nodes)
    feeder_kv = dict(network.feeders.select("feeder_id", "voltage_kv").iter_rows())
    node_feeder: dict[str, str | None] = {}
    for u, v, attrs in G.edges(data=True):
        for node in (u, v):
            node_feeder.setdefault(node, attrs["feeder_id"])
    vn = [feeder_kv.get(node_feeder.get(n) or "") or DEFAULT_KV for n in nodes]
    index = dict(zip(nodes, pp.create_buses(net, len(nodes), vn_kv=vn, name=nodes),
                     strict=True))
    for node in sorted(set(G.graph["supply"].values()) & set(index)):
        pp.create_ext_grid(net, index[node], vm_pu=1.0, name=node)
    lines = edges.filter(pl.col("kind").is_in(["line", "cable"]))
    if lines.height:
        pp.create_lines_from_parameters(
            net, [index[n] for n in lines["from_node"]], [index[n] for n in lines["to_node"]],
            length_km=(lines["length_m"].fill_null(1.0).clip(lower_bound=1.0) / 1000).to_list(),
            name=lines["edge_id"].to_list(), in_service=lines["in_service"].cast(pl.Boolean)
            .to_list(), **LINE,
        )
    switches = edges.filter(pl.col("kind").is_in(list(SWITCH_TYPES)))
    if switches.height:
        normal_open = switches["normal_open"].cast(pl.Boolean)
        in_service = switches["in_service"].cast(pl.Boolean)
        pp.create_switches(
            net, [index[n] for n in switches["from_node"]],
            [index[n] for n in switches["to_node"]], et="b",
            closed=(~normal_open & in_service).to_list(),
            type=[SWITCH_TYPES[k] for k in switches["kind"]],
            name=switches["edge_id"].to_list(), kind=switches["kind"].to_list(),
            normal_open=normal_open.to_list(), equipment_in_service=in_service.to_list(),
        )
    loads = in_service_transformers.join(
        network.transformers.select("transformer_id", "capacity_kva"), on="transformer_id",
        how="left").filter(pl.col("node").is_in(list(index)))
    if loads.height:
        pp.create_loads(net, [index[n] for n in loads["node"]],
                        p_mw=(loads["capacity_kva"].fill_null(0.0) * LOAD_FACTOR / 1000)
                        .to_list(), name=loads["transformer_id"].to_list())
    return net


def export_pandapower(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the pandapower network of ``scope`` as JSON to ``path``; return element counts."""
    refuse_existing([path], overwrite)
    if progress:
        progress("export pandapower", 0, 2)
    with engine.connect() as conn:
        net = build_net(read_network(conn, open_view(conn, scope)))
    if progress:
        progress("export pandapower", 1, 2)
    with atomic_path(path) as partial:
        pp.to_json(net, str(partial))
    if progress:
        progress("export pandapower", 2, 2)
    return {name: len(net[name]) for name in ("bus", "ext_grid", "line", "switch", "load")}
