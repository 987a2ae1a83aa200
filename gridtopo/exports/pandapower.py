"""A pandapower network of the distribution model, for load-flow and topology studies.

Mapping (names are the source ids, so results map back to gridtopo):

* every connectivity node of the equipment graph → a ``bus`` (``vn_kv`` = the voltage of the
  smallest feeder id among its edges', 10 kV when it has none or the feeder's is unknown);
* where each in-service feeder's supply enters (:func:`~gridtopo.topology.graph.build_graph`'s
  ``supply``: the station bus beyond the feeder breaker) → an ``ext_grid`` (the HV/MV
  transformer and the grid above it as a stiff source at 1.0 pu), so every supplied feeder
  has a slack in its own island;
* lines and cables → ``line`` with the typical parameters of their kind and voltage
  (:mod:`gridtopo.exports.electrical`: the model holds no conductor types; column
  ``conductor`` names the conductor assumed), ``length_km`` from ``length_m`` (at least 1 m),
  ``in_service`` as in the model;
* switch, breaker, recloser, fuse → a bus-bus ``switch`` (type LBS for a switch, CB for the
  others), ``closed`` = normally closed and in service; columns ``kind``, ``normal_open`` and
  ``equipment_in_service`` keep the model's values;
* in-service transformers → a ``load`` at their node named by transformer id, from the load
  model (:mod:`gridtopo.exports.demand`: ``contract`` — the customers' contract capacity ×
  coincidence factor per class, capped by the rating — or ``rating`` × utilisation); columns
  ``customers`` and ``load_source`` say what each load stands on. The distribution
  transformer itself is not modelled (an MV study; its losses are not in the flow).

The network is in the normal switching state, so ``pandapower.topology.unsupplied_buses``
returns exactly the buses whose nodes :func:`~gridtopo.topology.graph.energized_nodes` says are
not energized, and ``pandapower.runpp`` converges on it (buses without supply are left out of
the flow by pandapower). It is built in memory (pandapower's frames), then written with
``pandapower.to_json`` under a temporary name.

Feeder XL-000001: one slack at the station bus N00000001, the loads of its 26 transformers
standing for its 1,700 customers:

>>> import pandapower as pp
>>> from gridtopo.db.read.scope import Scope
>>> export_pandapower(engine, Path("net.json"), Scope(feeders=("XL-000001",)))
{'bus': 56, 'ext_grid': 1, 'line': 19, 'switch': 36, 'load': 26}
>>> net = pp.from_json("net.json")
>>> net.ext_grid.name.tolist(), int(net.load.customers.sum())
(['N00000001'], 1700)
"""

from __future__ import annotations

from pathlib import Path

import pandapower as pp
import polars as pl
from sqlalchemy import Engine

from gridtopo.db.read.scope import Scope, open_view
from gridtopo.exports import electrical
from gridtopo.exports.demand import LoadModel, transformer_demand
from gridtopo.exports.files import atomic_path, refuse_existing
from gridtopo.exports.network import ScopedNetwork, read_network
from gridtopo.progress import ProgressCallback

SWITCH_TYPES = {"switch": "LBS", "breaker": "CB", "recloser": "CB", "fuse": "CB"}


def node_voltages(network: ScopedNetwork) -> dict[str, float]:
    """``{node: kV}`` for every node an edge, transformer or feeder source names: the voltage
    of the smallest feeder id among those naming it (as the CIM exports place nodes),
    :data:`~gridtopo.exports.electrical.DEFAULT_KV` without one."""
    e, t = network.edges, network.transformers
    named = pl.concat([
        e.select(node="from_node", feeder_id="feeder_id"),
        e.select(node="to_node", feeder_id="feeder_id"),
        t.filter(pl.col("node").is_not_null()).select("node", "feeder_id"),
        network.sources.select(node="source_node", feeder_id="feeder_id"),
    ])
    kv = network.feeders.select("feeder_id", "voltage_kv")
    return dict(named.group_by("node").agg(pl.col("feeder_id").min())
                .join(kv, on="feeder_id", how="left")
                .select("node", pl.col("voltage_kv").fill_null(electrical.DEFAULT_KV))
                .iter_rows())


def build_net(network: ScopedNetwork, demand: pl.DataFrame) -> pp.pandapowerNet:
    """The pandapower network of ``network`` with the loads of ``demand``
    (:func:`~gridtopo.exports.demand.transformer_demand`; see the module doc)."""
    G = network.graph()
    edges, _, in_service_transformers = network.graph_frames()
    edges = edges.join(network.edges.select("edge_id", "length_m"), on="edge_id", how="left")
    net = pp.create_empty_network(name="gridtopo", f_hz=50.0)
    nodes = sorted(G.nodes)
    kv = node_voltages(network)
    vn = [kv.get(n, electrical.DEFAULT_KV) for n in nodes]
    index = dict(zip(nodes, pp.create_buses(net, len(nodes), vn_kv=vn, name=nodes),
                     strict=True))
    for node in sorted(set(G.graph["supply"].values()) & set(index)):
        pp.create_ext_grid(net, index[node], vm_pu=1.0, name=node)
    lines = edges.filter(pl.col("kind").is_in(["line", "cable"]))
    if lines.height:
        types = [electrical.line_type(kind, kv.get(a)) for kind, a in
                 lines.select("kind", "from_node").iter_rows()]
        pp.create_lines_from_parameters(
            net, [index[n] for n in lines["from_node"]], [index[n] for n in lines["to_node"]],
            length_km=(lines["length_m"].fill_null(electrical.MIN_LENGTH_M)
                       .clip(lower_bound=electrical.MIN_LENGTH_M) / 1000).to_list(),
            r_ohm_per_km=[t.r_ohm_per_km for t in types],
            x_ohm_per_km=[t.x_ohm_per_km for t in types],
            c_nf_per_km=[t.c_nf_per_km for t in types], max_i_ka=[t.max_i_ka for t in types],
            name=lines["edge_id"].to_list(), in_service=lines["in_service"].cast(pl.Boolean)
            .to_list(), type=["cs" if k == "cable" else "ol" for k in lines["kind"]],
            conductor=[t.name for t in types],
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
    loads = in_service_transformers.join(demand, on="transformer_id", how="inner").filter(
        pl.col("node").is_in(list(index)))
    if loads.height:
        pp.create_loads(net, [index[n] for n in loads["node"]], p_mw=loads["p_mw"].to_list(),
                        q_mvar=loads["q_mvar"].to_list(),
                        name=loads["transformer_id"].to_list(),
                        customers=loads["customers"].to_list(),
                        load_source=loads["load_source"].to_list())
    return net


def export_pandapower(
    engine: Engine,
    path: Path,
    scope: Scope = Scope(),  # noqa: B008 - frozen dataclass
    *,
    load_model: LoadModel = "contract",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, int]:
    """Write the pandapower network of ``scope`` as JSON to ``path``; return element counts.
    ``load_model`` is ``contract`` or ``rating`` (:mod:`gridtopo.exports.demand`)."""
    refuse_existing([path], overwrite)
    if progress:
        progress("export pandapower", 0, 2)
    with engine.connect() as conn:
        view = open_view(conn, scope)
        network = read_network(conn, view)
        demand = transformer_demand(conn, view, network.transformers, load_model)
    net = build_net(network, demand)
    if progress:
        progress("export pandapower", 1, 2)
    with atomic_path(path) as partial:
        pp.to_json(net, str(partial))
    if progress:
        progress("export pandapower", 2, 2)
    return {name: len(net[name]) for name in ("bus", "ext_grid", "line", "switch", "load")}
