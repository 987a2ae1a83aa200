"""A switching change applied to the query index: only the affected feeders' trees re-derived.

A province-size index takes half a minute to build, most of it the supply forest's search. A
switching change (a tie moved, a section out of service) can only change the trees of the
supply nodes connected to the changed devices: :func:`switched` finds that part — the nodes
connected to either end of a changed device in the network before or after the change
(typically one station's feeders), searches it again from its supply nodes in the order
:func:`~gridtopo.topology.index.build.index_from_frames` does, keeps every other tree's
stretch of the pre-order as it was (moved as a block), and derives the arrays that follow
from the numbering (chords, feeders and pieces by position, customers and transformers in
position order) with array operations. The result equals a fresh build of the changed model,
array for array (``tests/test_switching_index.py`` checks this on random changes).

>>> import polars as pl
>>> from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
>>> from gridtopo.topology.index import CUSTOMER_SCHEMA, index_from_frames
>>> edges = pl.DataFrame([("B", "breaker", "F", "BUS", "S", 0, 1),
...                       ("L", "line", "F", "S", "N", 0, 1)], schema=EDGE_SCHEMA, orient="row")
>>> index = index_from_frames(edges, pl.DataFrame([("F", "S", "ST")], schema=SOURCE_SCHEMA,
...                                               orient="row"),
...                           pl.DataFrame([("T", "N")], schema=TRANSFORMER_SCHEMA, orient="row"),
...                           pl.DataFrame([("C", "T", 1)], schema=CUSTOMER_SCHEMA, orient="row"))
>>> out = switched(index, {"L": (False, False)})
>>> out.n_energized, index.n_energized, out.count_customers(np.arange(out.n_energized))
(2, 3, 0)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np

from gridtopo.db.models import EDGE_KINDS, SWITCHING_KINDS
from gridtopo.topology.index.build import (
    adjacency,
    feeder_of_positions,
    forest_counts,
    supply_pieces,
    transformer_positions,
    tree_edges,
)
from gridtopo.topology.index.structure import QueryIndex, _gather

UNCHANGED = ("node_ids", "edge_ids", "edge_kind", "edge_feeder", "edge_from", "edge_to",
             "transformer_ids", "transformer_node", "customer_ids", "customer_transformer",
             "customer_active", "feeder_ids", "feeder_source", "feeder_station",
             "feeder_supply")
"""Arrays a switching change never alters (saved by linking the former files)."""
_SWITCHING = np.array([EDGE_KINDS.index(k) for k in SWITCHING_KINDS])


def _neighbours(start: np.ndarray, node: np.ndarray, at: int) -> list[int]:
    result: list[int] = node[start[at]:start[at + 1]].tolist()
    return result


def _component(seeds: set[int], adjacencies: list[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    """Nodes joined to ``seeds`` in any of the adjacencies (``(start, neighbour)`` pairs)."""
    seen = set(seeds)
    frontier = list(seeds)
    while frontier:
        at = frontier.pop()
        for start, node in adjacencies:
            for other in _neighbours(start, node, at):
                if other not in seen:
                    seen.add(other)
                    frontier.append(other)
    return sorted(seen)


def _search(roots: list[int], all_roots: set[int], start: np.ndarray, node: np.ndarray,
            edge: np.ndarray) -> tuple[list[list[int]], dict[int, int], dict[int, int]]:
    """The pre-order search of ``build._dfs`` from ``roots`` only: each root's node sequence,
    parent edges and subtree sizes of the nodes reached (never entering another root)."""
    placed: set[int] = set()
    parent_edge: dict[int, int] = {}
    parent: dict[int, int] = {}
    trees = []
    for root in roots:
        order: list[int] = []
        stack = [(root, -1, -1)]
        while stack:
            at, via, up = stack.pop()
            if at in placed:
                continue
            placed.add(at)
            order.append(at)
            parent_edge[at], parent[at] = via, up
            lo, hi = int(start[at]), int(start[at + 1])
            for other, by in zip(node[lo:hi].tolist(), edge[lo:hi].tolist(), strict=True):
                if other not in placed and other not in all_roots:
                    stack.append((other, by, at))
        trees.append(order)
    size = dict.fromkeys(parent, 1)
    for tree in trees:
        for at in reversed(tree):
            if parent[at] >= 0:
                size[parent[at]] += size[at]
    return trees, parent_edge, size


def switched(index: QueryIndex, states: Mapping[str, tuple[bool, bool]],
             meta: Mapping[str, object] | None = None) -> QueryIndex:
    """``index`` with the edges of ``states`` (``{edge_id: (normal_open, in_service)}``) in
    their new state, and ``meta`` merged into its meta; see the module docstring."""
    numbers = index.edge_indices(list(states))
    n, n_en = len(index.node_ids), index.n_energized
    u, v = index.edge_from, index.edge_to
    normal_open = np.array(index.edge_normal_open, copy=True)
    in_service = np.array(index.edge_in_service, copy=True)
    flags = np.array(list(states.values()), dtype=bool).reshape(-1, 2)
    normal_open[numbers] = flags[:, 0] & np.isin(index.edge_kind[numbers], _SWITCHING)
    in_service[numbers] = flags[:, 1]
    conducts = in_service & ~normal_open & (u != v)
    adj_start, adj_node, adj_edge = adjacency(n, u, v, conducts)

    old_pos, old_order, old_end = index.pos, index.order, index.end
    root_positions = np.flatnonzero(index.parent_edge[old_order[:n_en]] < 0)
    roots = old_order[root_positions]
    all_roots = set(roots.tolist())
    part = _component({int(x) for x in np.concatenate([u[numbers], v[numbers]])},
                      [(index.adj_start, index.adj_node), (adj_start, adj_node)])
    part_a = np.array(part, dtype=np.int64)
    in_part = set(part)
    affected = [r for r in roots.tolist() if r in in_part]
    trees, parent_of, size_of = _search(affected, all_roots, adj_start, adj_node, adj_edge)
    new_tree = dict(zip(affected, trees, strict=True))

    islands = np.zeros(n, dtype=bool)
    islands[old_order[n_en:]] = True
    islands[part_a] = True
    reached = np.fromiter(parent_of, dtype=np.int64, count=len(parent_of))
    islands[reached] = False
    blocks: list[np.ndarray | tuple[int, int]] = []  # new node sequences, kept old spans
    for root in roots.tolist():
        if root in new_tree:
            blocks.append(np.array(new_tree[root], dtype=np.int64))
            continue
        lo, hi = int(old_pos[root]), int(old_end[root])
        last = blocks[-1] if blocks else None
        if isinstance(last, tuple) and last[1] == lo:
            blocks[-1] = (last[0], hi)
        else:
            blocks.append((lo, hi))
    forest = [b if isinstance(b, np.ndarray) else old_order[b[0]:b[1]] for b in blocks]
    order = np.concatenate([*forest, np.flatnonzero(islands)]).astype(np.int64)
    new_en = sum(len(b) for b in forest)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n, dtype=np.int64)

    size = old_end - old_pos
    size[part_a] = 1
    parent_edge = np.array(index.parent_edge, copy=True)
    parent_edge[part_a] = -1
    if reached.size:
        size[reached] = np.fromiter((size_of[x] for x in reached.tolist()), np.int64,
                                    reached.size)
        parent_edge[reached] = np.fromiter((parent_of[x] for x in reached.tolist()), np.int64,
                                           reached.size)
    end = pos + size
    tree_child, chord, cum_chords = tree_edges(parent_edge, pos, u, v, conducts, new_en)
    position_feeder = feeder_of_positions(pos, end, order, index.feeder_source)
    supply = supply_pieces(pos, order, parent_edge, new_en, u, v, np.flatnonzero(chord), roots,
                           index.edge_feeder, position_feeder)
    cum_transformers, transformers_by_position = transformer_positions(
        pos, index.transformer_node)
    cum_customers, customers_by_position = _customers(index, order, blocks)
    return QueryIndex(**{
        **{name: getattr(index, name) for name in UNCHANGED},
        "edge_conducts": conducts, "edge_normal_open": normal_open,
        "edge_in_service": in_service, "pos": pos, "end": end, "order": order,
        "parent_edge": parent_edge, "tree_child": tree_child,
        "position_feeder": position_feeder, "cum_customers": cum_customers,
        "customers_by_position": customers_by_position, "cum_transformers": cum_transformers,
        "transformers_by_position": transformers_by_position, "cum_chords": cum_chords,
        "adj_start": adj_start, "adj_node": adj_node, "adj_edge": adj_edge, **supply,
    }, n_energized=new_en, meta={
        **index.meta, **forest_counts(new_en, chord, supply), **(meta or {}),
        "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})


def _customers(index: QueryIndex, order: np.ndarray,
               blocks: list[np.ndarray | tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Prefix counts of customers per new position and the customers in new position order:
    kept trees' customers move as blocks (``(old start, old end)`` spans), those of
    re-derived trees and of the dead nodes after the forest are gathered by node."""
    old_cum, old_by = index.cum_customers, index.customers_by_position
    per_node = np.empty(len(order), dtype=np.int64)
    per_node[index.order] = np.diff(old_cum)
    cum = np.concatenate(([0], np.cumsum(per_node[order])))
    forest = sum(b[1] - b[0] if isinstance(b, tuple) else len(b) for b in blocks)
    parts = [old_by[old_cum[b[0]]:old_cum[b[1]]] if isinstance(b, tuple)
             else _gather(old_cum, old_by, index.pos[b]) for b in blocks]
    parts.append(_gather(old_cum, old_by, index.pos[order[forest:]]))
    return cum, np.concatenate(parts).astype(old_by.dtype)
