"""Building the query index from the model's frames: numbering, the supply forest, the pieces.

The supply forest is a pre-order DFS of the conducting graph of the normal switching state.
Every supply node (where a source feeder's supply enters, see
:func:`~gridtopo.topology.graph.supply_nodes`) is claimed as a root before the search starts,
so a search never enters another supply node: two sources joined by a closed bus coupler or a
closed path between their feeders get a tree each, and the edges joining the trees are chords,
searched only when an outage cuts a range holding one (as for any loop). Without that, one
source would hang below the other and opening the path between them would be reported as
de-energizing everything the second source feeds.

>>> import polars as pl
>>> from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
>>> edges = pl.DataFrame([("B", "breaker", "F", "BUS", "S", 0, 1),
...                       ("L", "line", "F", "S", "N", 0, 1)], schema=EDGE_SCHEMA, orient="row")
>>> index = index_from_frames(edges, pl.DataFrame([("F", "S", "ST")], schema=SOURCE_SCHEMA,
...                                               orient="row"),
...                           pl.DataFrame([("T", "N")], schema=TRANSFORMER_SCHEMA, orient="row"),
...                           pl.DataFrame([("C", "T", 1)], schema=CUSTOMER_SCHEMA, orient="row"))
>>> index.count_customers(index.affected_positions(index.edge_indices(["B"])))
1
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy import Engine

from gridtopo.db.models import EDGE_KINDS, SWITCHING_KINDS
from gridtopo.db.read.frames import read_table
from gridtopo.db.read.network import read_network
from gridtopo.db.switching import model_stamp
from gridtopo.topology.graph import supply_nodes
from gridtopo.topology.index.structure import QueryIndex, lookup

CUSTOMER_ACTIVE = "CASE WHEN status = 'closed' THEN 0 ELSE 1 END"
"""Whether a customer counts in the index's answers (1) or not (0: closed account)."""
CUSTOMER_SQL = f"SELECT customer_id, transformer_id, {CUSTOMER_ACTIVE} FROM customers"
CUSTOMER_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "customer_id": pl.Utf8, "transformer_id": pl.Utf8, "active": pl.Int8,
}


def _bytes(series: pl.Series) -> np.ndarray:
    """A string column as a fixed-width bytes array (UTF-8), the form that memory-maps."""
    if series.is_empty():
        return np.zeros(0, dtype="S1")
    try:
        return series.fill_null("").to_numpy().astype(bytes)  # ASCII ids: a C-level cast
    except UnicodeEncodeError:
        return np.array(series.cast(pl.Binary).to_list(), dtype=bytes)


def _positions(keys: pl.Series, values: pl.Series) -> np.ndarray:
    """Place of each of ``values`` in the sorted, unique ``keys`` (-1 where absent), by a
    hash join: millions of ids without a Python object each."""
    table = pl.DataFrame({"k": keys, "i": np.arange(len(keys), dtype=np.int64)})
    found = pl.DataFrame({"k": values}).join(table, on="k", how="left",
                                             maintain_order="left")["i"]
    return found.fill_null(-1).to_numpy()


def build_index(engine: Engine, customers: pl.DataFrame | None = None,
                network: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = None
                ) -> QueryIndex:
    """Build the index of ``engine``'s model in memory (save it with
    :func:`~gridtopo.topology.index.save_index`), stamped with the model's run and switching
    version; ``customers`` (:data:`CUSTOMER_SCHEMA`) and ``network`` (the frames of
    ``read_network``) when the caller has the stored ones at hand, else they are read."""
    with engine.connect() as conn:
        stamp = model_stamp(conn)
    edges, sources, transformers = network or read_network(engine)
    if customers is None:
        customers = read_customers(engine)
    index = index_from_frames(edges, sources, transformers, customers, stamp.run,
                              stamp.switching_version)
    index.meta["load"] = stamp.load
    return index


def read_customers(engine: Engine) -> pl.DataFrame:
    """The customers as the index holds them (:data:`CUSTOMER_SCHEMA`), by the fast table
    reader (on SQLite one text block per 200,000 rows, two readers: twice as fast as fetching
    rows at a million customers)."""
    return read_table(engine, "customers", CUSTOMER_SCHEMA,
                      exprs=["customer_id", "transformer_id", CUSTOMER_ACTIVE], readers=2)


SHAPE = ("node_ids", "edge_ids", "edge_kind", "edge_feeder", "edge_from", "edge_to",
         "feeder_ids", "feeder_source", "feeder_station", "feeder_supply")
"""The index's arrays that the network's shape alone gives — its nodes and edges, how they
join, the feeders, their sources, stations and supply nodes — as against the normal switching
state (``edge_normal_open``, ``edge_in_service``) and all that is searched from it. Two models
with equal shapes differ in their supply forests only as a switching change makes them
differ (:func:`~gridtopo.topology.index.update.switched`)."""


@dataclass(frozen=True)
class Network:
    """The :data:`SHAPE` arrays and normal state of a model (``arrays``), the sorted node keys
    they number, and the supply nodes the forest's trees grow from (``roots``)."""

    arrays: dict[str, np.ndarray]
    node_keys: pl.Series
    roots: np.ndarray


def network_arrays(edges: pl.DataFrame, sources: pl.DataFrame, transformers: pl.DataFrame
                   ) -> Network:
    """The numbered network of the model given as frames (schemas of
    ``db.read.network.read_network``): what :func:`index_from_frames` searches."""
    node_keys = pl.concat([edges["from_node"], edges["to_node"], transformers["node"],
                           sources["source_node"]]).drop_nulls().unique().sort()
    node_ids = _bytes(node_keys)
    edges = edges.sort("edge_id")
    kind = np.array([EDGE_KINDS.index(k) for k in edges["kind"].to_list()], dtype=np.int8)
    switching = np.isin(kind, [EDGE_KINDS.index(k) for k in SWITCHING_KINDS])
    feeder_keys = pl.concat([edges["feeder_id"].drop_nulls(), sources["feeder_id"]]
                            ).unique().sort()
    feeder_ids = _bytes(feeder_keys)
    supply = supply_nodes(edges, sources)
    source_of = {f: (node, station) for f, node, station in sources.iter_rows()}
    arrays = {
        "node_ids": node_ids, "edge_ids": _bytes(edges["edge_id"]), "edge_kind": kind,
        "edge_feeder": _positions(feeder_keys, edges["feeder_id"]),
        "edge_from": _positions(node_keys, edges["from_node"]),
        "edge_to": _positions(node_keys, edges["to_node"]),
        "edge_normal_open": (edges["normal_open"].to_numpy() == 1) & switching,
        "edge_in_service": edges["in_service"].to_numpy() == 1,
        "feeder_ids": feeder_ids,
        "feeder_source": lookup(node_ids, [source_of.get(f.decode(), ("", ""))[0]
                                           for f in feeder_ids]),
        "feeder_station": _bytes(pl.Series([source_of.get(f.decode(), ("", ""))[1]
                                            for f in feeder_ids], dtype=pl.Utf8)),
        "feeder_supply": lookup(node_ids, [supply.get(f.decode(), "") for f in feeder_ids]),
    }
    return Network(arrays, node_keys, lookup(node_ids, sorted(set(supply.values()))))


def index_from_frames(
    edges: pl.DataFrame,
    sources: pl.DataFrame,
    transformers: pl.DataFrame,
    customers: pl.DataFrame,
    ingest_run: int = 0,
    switching_version: int = 0,
) -> QueryIndex:
    """The index of the model given as frames (schemas of ``db.read.network.read_network`` and
    ``CUSTOMER_SCHEMA``); the pure part of :func:`build_index`, used by tests too."""
    network = network_arrays(edges, sources, transformers)
    a = network.arrays
    u, v = a["edge_from"], a["edge_to"]
    conducts = a["edge_in_service"] & ~a["edge_normal_open"] & (u != v)
    n = len(a["node_ids"])
    adj_start, adj_node, adj_edge = adjacency(n, u, v, conducts)
    roots = network.roots
    pos, end, order, parent_edge, n_en = _dfs(n, roots, adj_start, adj_node, adj_edge)
    tree_child, chord, cum_chords = tree_edges(parent_edge, pos, u, v, conducts, n_en)
    position_feeder = feeder_of_positions(pos, end, order, a["feeder_source"])
    pieces = supply_pieces(pos, order, parent_edge, n_en, u, v, np.flatnonzero(chord), roots,
                           a["edge_feeder"], position_feeder)

    attached = attach(network.node_keys, pos, transformers, customers)

    meta = {"ingest_run": ingest_run, "switching_version": switching_version,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "nodes": n, "edges": len(a["edge_ids"]),
            "transformers": len(attached["transformer_ids"]),
            "customers": len(attached["customer_ids"]),
            "feeders": len(a["feeder_ids"]), "supply_nodes": int((roots >= 0).sum()),
            **forest_counts(n_en, chord, pieces)}
    return QueryIndex(
        **a, edge_conducts=conducts, pos=pos, end=end,
        order=order, parent_edge=parent_edge, tree_child=tree_child,
        position_feeder=position_feeder, cum_chords=cum_chords, **attached,
        adj_start=adj_start, adj_node=adj_node, adj_edge=adj_edge,
        **pieces, n_energized=n_en, meta=meta,
    )


def attach(node_keys: pl.Series, pos: np.ndarray, transformers: pl.DataFrame,
           customers: pl.DataFrame) -> dict[str, np.ndarray]:
    """The transformer and customer arrays of an index whose nodes are ``node_keys`` (sorted)
    at positions ``pos``: apart from the supply forest, so that a change of transformers or
    customers alone re-attaches them to the kept forest (:mod:`.refresh`) instead of searching
    the network again."""
    n = len(pos)
    transformers = transformers.sort("transformer_id")
    transformer_ids = _bytes(transformers["transformer_id"])
    transformer_node = _positions(node_keys, transformers["node"])
    tr_pos = pos[transformer_node]
    cum_transformers, transformers_by_position = transformer_positions(pos, transformer_node)

    customers = customers.sort("customer_id")
    customer_ids = _bytes(customers["customer_id"])
    customer_transformer = _positions(transformers["transformer_id"],
                                      customers["transformer_id"]).astype(np.int32)
    customer_active = customers["active"].to_numpy().astype(bool)
    counted = np.flatnonzero(customer_active & (customer_transformer >= 0))
    c_pos = tr_pos[customer_transformer[counted]]
    # int32 halves the two per-customer arrays (14 M customers: 57 MB each instead of 114)
    customers_by_position = counted[np.argsort(c_pos, kind="stable")].astype(np.int32)
    cum_customers = np.concatenate(([0], np.cumsum(np.bincount(c_pos, minlength=n))))

    return {
        "transformer_ids": transformer_ids, "transformer_node": transformer_node,
        "customer_ids": customer_ids, "customer_transformer": customer_transformer,
        "customer_active": customer_active, "cum_customers": cum_customers,
        "customers_by_position": customers_by_position, "cum_transformers": cum_transformers,
        "transformers_by_position": transformers_by_position,
    }


def adjacency(n: int, u: np.ndarray, v: np.ndarray, conducts: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The conducting edges as adjacency lists over ``n`` nodes (CSR: ``start``, neighbour,
    edge), each node's in edge-number order."""
    sel = np.flatnonzero(conducts)
    a = np.concatenate([u[sel], v[sel]])
    b = np.concatenate([v[sel], u[sel]])
    e = np.concatenate([sel, sel])
    by = np.argsort(a, kind="stable")
    adj_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=adj_start[1:])
    return adj_start, b[by], e[by]


def tree_edges(parent_edge: np.ndarray, pos: np.ndarray, u: np.ndarray, v: np.ndarray,
               conducts: np.ndarray, n_en: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The node below each tree edge (-1 for others), which conducting edges are chords, and
    the prefix count of chord ends per position."""
    tree_child = np.full(len(u), -1, dtype=np.int64)
    has_parent = np.flatnonzero(parent_edge >= 0)
    tree_child[parent_edge[has_parent]] = has_parent
    chord = conducts & (tree_child < 0) & (pos[u] < n_en)
    chord_count = np.bincount(np.concatenate([pos[u[chord]], pos[v[chord]]]),
                              minlength=len(pos))
    return tree_child, chord, np.concatenate(([0], np.cumsum(chord_count)))


def feeder_of_positions(pos: np.ndarray, end: np.ndarray, order: np.ndarray,
                        feeder_source: np.ndarray) -> np.ndarray:
    """The feeder whose supply tree holds each position: the subtree below each feeder's
    ``source_node``, nested ones (a feeder fed through another) labelling their own part."""
    position_feeder = np.full(len(pos), -1, dtype=np.int64)
    labelled = [(int(pos[s]), i) for i, s in enumerate(feeder_source.tolist()) if s >= 0]
    for start, f in sorted(labelled):
        position_feeder[start:int(end[order[start]])] = f
    return position_feeder


def transformer_positions(pos: np.ndarray, transformer_node: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Prefix count of transformers per position and the transformers in position order."""
    tr_pos = pos[transformer_node]
    return (np.concatenate(([0], np.cumsum(np.bincount(tr_pos, minlength=len(pos))))),
            np.argsort(tr_pos, kind="stable"))


def forest_counts(n_en: int, chord: np.ndarray, pieces: dict[str, np.ndarray]
                  ) -> dict[str, int]:
    """The meta counts that depend on the switching state."""
    entries_per_piece = np.diff(pieces["piece_entry_start"])
    return {"energized_nodes": n_en, "chords": int(chord.sum()),
            "multi_fed_pieces": int((entries_per_piece > 1).sum())}


def _dfs(
    n: int, roots: np.ndarray, adj_start: np.ndarray, adj_node: np.ndarray, adj_edge: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Pre-order DFS of the conducting graph from ``roots``; unreached nodes numbered after.

    Every root is claimed before any search starts, so no search enters another root: each
    root gets its own tree. Returns position, subtree end, order (node at position), parent
    edge and the count of reached nodes. An entry popped from the stack belongs to the node
    that pushed it, so every subtree is contiguous in pre-order.
    """
    starts, nodes, eids = adj_start.tolist(), adj_node.tolist(), adj_edge.tolist()
    unseen, claimed = -1, -2
    pos = [unseen] * n
    roots = roots[roots >= 0]
    for root in roots.tolist():
        pos[root] = claimed
    parent_edge = [-1] * n
    parent = [-1] * n
    order: list[int] = []
    for root in roots.tolist():
        stack = [(root, -1, -1)]
        while stack:
            node, via, up = stack.pop()
            if pos[node] >= 0:
                continue
            pos[node] = len(order)
            order.append(node)
            parent_edge[node], parent[node] = via, up
            for k in range(starts[node], starts[node + 1]):
                if pos[nodes[k]] == unseen:
                    stack.append((nodes[k], eids[k], node))
    n_en = len(order)
    size = [1] * n
    for node in reversed(order):
        if parent[node] >= 0:
            size[parent[node]] += size[node]
    for node in range(n):
        if pos[node] < 0:
            pos[node] = len(order)
            order.append(node)
    pos_a = np.array(pos, dtype=np.int64)
    end = pos_a + np.array(size, dtype=np.int64)
    return pos_a, end, np.array(order, dtype=np.int64), np.array(parent_edge, dtype=np.int64), \
        n_en


def supply_pieces(
    pos: np.ndarray, order: np.ndarray, parent_edge: np.ndarray, n_en: int, u: np.ndarray,
    v: np.ndarray, chords: np.ndarray, roots: np.ndarray, edge_feeder: np.ndarray,
    position_feeder: np.ndarray,
) -> dict[str, np.ndarray]:
    """Branches (subtrees of a root's children), the pieces chords join them into, and the
    edges by which supply enters each piece: the arrays ``QueryIndex.supply_entries`` reads.

    Chords between two branches merge their pieces; a chord from a supply node into a branch
    is one more entry of its piece; a chord between two supply nodes (a closed bus coupler)
    changes no piece. An entry's feeder is the entry edge's, else the one labelling its far end.
    """
    is_root = np.zeros(len(pos), dtype=bool)
    is_root[roots[roots >= 0]] = True
    child = order[:n_en]
    child = child[parent_edge[child] >= 0]
    up_edge = parent_edge[child]
    up = np.where(v[up_edge] == child, u[up_edge], v[up_edge])
    head = is_root[up]
    by_pos = np.argsort(pos[child[head]], kind="stable")
    heads, head_edge, head_root = child[head][by_pos], up_edge[head][by_pos], up[head][by_pos]
    branch_pos = pos[heads]

    def branch_of(nodes: np.ndarray) -> np.ndarray:
        return np.searchsorted(branch_pos, pos[nodes], side="right") - 1

    cu, cv = u[chords], v[chords]
    root_u, root_v = is_root[cu], is_root[cv]
    inner = ~root_u & ~root_v
    label = list(range(heads.size))  # union-find over branches, joined by inner chords

    def find(x: int) -> int:
        while label[x] != x:
            label[x] = label[label[x]]
            x = label[x]
        return x

    for a, b in zip(branch_of(cu[inner]).tolist(), branch_of(cv[inner]).tolist(), strict=True):
        label[find(a)] = find(b)
    _, branch_piece = np.unique(np.array([find(x) for x in range(heads.size)], dtype=np.int64),
                                return_inverse=True)
    entering = root_u ^ root_v
    far = np.where(root_u[entering], cv[entering], cu[entering])
    entry_branch = np.concatenate([np.arange(heads.size), branch_of(far)])
    entry_edge = np.concatenate([head_edge, chords[entering]])
    entry_node = np.concatenate([head_root, np.where(root_u[entering], cu[entering],
                                                     cv[entering])])
    entry_far = np.concatenate([heads, far])
    entry_piece = branch_piece[entry_branch]
    keep = np.lexsort((entry_edge, entry_piece))
    entry_feeder = edge_feeder[entry_edge]
    entry_feeder = np.where(entry_feeder >= 0, entry_feeder, position_feeder[pos[entry_far]])
    n_pieces = int(branch_piece.max()) + 1 if branch_piece.size else 0
    return {
        "branch_pos": branch_pos.astype(np.int64),
        "branch_piece": branch_piece.astype(np.int64),
        "piece_entry_start": np.concatenate(
            ([0], np.cumsum(np.bincount(entry_piece, minlength=n_pieces)))).astype(np.int64),
        "piece_entry_edge": entry_edge[keep].astype(np.int64),
        "piece_entry_node": entry_node[keep].astype(np.int64),
        "piece_entry_feeder": entry_feeder[keep].astype(np.int64),
    }
