"""The query index's arrays and the questions answered on them (see :mod:`gridtopo.topology.index`).

Everything here reads arrays only: no database, no graph library, so the same code answers on
an index built in memory (:mod:`.build`) and on one memory-mapped from disk (:mod:`.store`).

>>> QueryIndex.names(np.array([b"E1", b"E2"]), np.array([1]))
['E2']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from gridtopo.db.models import EDGE_KINDS
from gridtopo.topology.graph import UnknownDeviceError, UnknownIdError

__all__ = ["PROTECTIVE_KINDS", "QueryIndex", "UnknownIdError"]

PROTECTIVE_KINDS = ("breaker", "fuse", "recloser")
"""Devices that trip on a fault by themselves; the rest of SWITCHING_KINDS are operated."""


def lookup(sorted_ids: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Positions of ``ids`` in ``sorted_ids``, -1 where absent."""
    if not len(ids) or not len(sorted_ids):
        return np.full(len(ids), -1, dtype=np.int64)
    keys = np.array([i.encode() for i in ids], dtype=bytes)
    found = np.searchsorted(sorted_ids, keys)
    found = np.minimum(found, len(sorted_ids) - 1)
    return np.where(sorted_ids[found] == keys, found, -1).astype(np.int64)


def _gather(cum: np.ndarray, order: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``order[cum[p]:cum[p + 1]]`` concatenated over ``positions``, without a Python loop."""
    starts = cum[positions]
    lengths = cum[positions + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=order.dtype)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.asarray(order[offsets + np.arange(total)])


@dataclass
class QueryIndex:
    """The arrays of the index (see the package docstring); build with
    :func:`~gridtopo.topology.index.build_index`.

    Node, edge, transformer, customer and feeder ids are sorted bytes arrays and an entity's
    number is its place there. ``pos``/``end`` give each node's pre-order position and the end
    of its subtree; ``order`` is the inverse (node at a position). ``parent_edge`` is the tree
    edge above a node (-1 at a root or off the forest), ``tree_child`` the node below a tree
    edge (-1 for other edges). ``n_energized`` positions come first; later ones are dead.
    ``edge_normal_open`` is the normal-open flag where it counts (switching devices only) and
    ``edge_in_service`` the service flag: together they say which edges a plan can close.

    Every supply node (``feeder_supply``: where each source feeder's supply enters) is a root
    of its own tree, so supply never flows "through" another source; conducting edges between
    two trees are chords. A **branch** is the subtree of one child of a root (``branch_pos``:
    their start positions, sorted); branches joined by chords away from the supply nodes form
    one **piece** (``branch_piece``), and the edges by which supply enters a piece (feeder
    breakers, chords from a supply node) are ``piece_entry_edge[piece_entry_start[k]:
    piece_entry_start[k + 1]]``, entering from ``piece_entry_node`` for ``piece_entry_feeder``
    (see :meth:`supply_entries`).
    """

    node_ids: np.ndarray
    edge_ids: np.ndarray
    edge_kind: np.ndarray
    edge_feeder: np.ndarray
    edge_from: np.ndarray
    edge_to: np.ndarray
    edge_conducts: np.ndarray
    edge_normal_open: np.ndarray
    edge_in_service: np.ndarray
    transformer_ids: np.ndarray
    transformer_node: np.ndarray
    customer_ids: np.ndarray
    customer_transformer: np.ndarray
    customer_active: np.ndarray
    feeder_ids: np.ndarray
    feeder_source: np.ndarray
    feeder_station: np.ndarray
    feeder_supply: np.ndarray
    pos: np.ndarray
    end: np.ndarray
    order: np.ndarray
    parent_edge: np.ndarray
    tree_child: np.ndarray
    position_feeder: np.ndarray
    cum_customers: np.ndarray
    customers_by_position: np.ndarray
    cum_transformers: np.ndarray
    transformers_by_position: np.ndarray
    cum_chords: np.ndarray
    adj_start: np.ndarray
    adj_node: np.ndarray
    adj_edge: np.ndarray
    branch_pos: np.ndarray
    branch_piece: np.ndarray
    piece_entry_start: np.ndarray
    piece_entry_edge: np.ndarray
    piece_entry_node: np.ndarray
    piece_entry_feeder: np.ndarray
    n_energized: int
    meta: dict[str, object]

    # ------------------------------------------------------------------ ids

    def edge_indices(self, devices: Iterable[str]) -> np.ndarray:
        """Edge numbers of device ids; :class:`UnknownDeviceError` names the unknown ones."""
        devices = list(devices)
        found = lookup(self.edge_ids, devices)
        if (found < 0).any():
            raise UnknownDeviceError(d for d, f in zip(devices, found, strict=True) if f < 0)
        return found

    def _ids(self, kind: str, sorted_ids: np.ndarray, ids: Iterable[str]) -> np.ndarray:
        ids = list(ids)
        found = lookup(sorted_ids, ids)
        if (found < 0).any():
            raise UnknownIdError(kind, (i for i, f in zip(ids, found, strict=True) if f < 0))
        return found

    def customer_indices(self, ids: Iterable[str]) -> np.ndarray:
        """Customer numbers of customer ids; :class:`UnknownIdError` names unknown ones."""
        return self._ids("customer", self.customer_ids, ids)

    def transformer_indices(self, ids: Iterable[str]) -> np.ndarray:
        """Transformer numbers of transformer ids; :class:`UnknownIdError` names unknown ones."""
        return self._ids("transformer", self.transformer_ids, ids)

    def node_indices(self, ids: Iterable[str]) -> np.ndarray:
        """Node numbers of node ids; :class:`UnknownIdError` names unknown ones."""
        return self._ids("node", self.node_ids, ids)

    @staticmethod
    def names(ids: np.ndarray, numbers: np.ndarray) -> list[str]:
        """Decoded ids of ``numbers`` in one of the sorted id arrays."""
        return [b.decode() for b in ids[numbers]]

    # ------------------------------------------------------------------ impact

    def customer_position(self, customer: int) -> int:
        """Position of a customer's transformer node, -1 when it has no usable transformer."""
        tr = int(self.customer_transformer[customer])
        if tr < 0:
            return -1
        node = int(self.transformer_node[tr])
        return int(self.pos[node]) if node >= 0 else -1

    def affected_positions(self, edges: np.ndarray) -> np.ndarray:
        """Sorted positions of the energized nodes that opening ``edges`` de-energizes.

        Opening a tree edge cuts its subtree; when the cut ranges hold a chord end, the nodes
        that chords still reach from outside are searched and kept energized.
        """
        children = self.tree_child[edges]
        children = children[children >= 0]
        if not children.size:
            return np.zeros(0, dtype=np.int64)
        starts = self.pos[children]
        ends = self.end[children]
        keep = np.argsort(starts, kind="stable")
        starts, ends = starts[keep], ends[keep]
        covered = np.maximum.accumulate(ends)
        outer = np.ones(starts.size, dtype=bool)
        outer[1:] = starts[1:] >= covered[:-1]
        starts, ends = starts[outer], ends[outer]
        lengths = ends - starts
        positions = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        positions = positions + np.arange(int(lengths.sum()))
        if int((self.cum_chords[ends] - self.cum_chords[starts]).sum()) == 0:
            return positions
        return self._search_meshed(positions, set(edges.tolist()))

    def _search_meshed(self, cut: np.ndarray, opened: set[int]) -> np.ndarray:
        """``cut`` minus the nodes still joined to the rest by conducting edges not opened."""
        inside = set(self.order[cut].tolist())
        reached: set[int] = set()
        frontier = []
        for node in inside:
            for k in range(int(self.adj_start[node]), int(self.adj_start[node + 1])):
                other = int(self.adj_node[k])
                if other not in inside and int(self.adj_edge[k]) not in opened and \
                        self.pos[other] < self.n_energized:
                    reached.add(node)
                    frontier.append(node)
                    break
        while frontier:
            node = frontier.pop()
            for k in range(int(self.adj_start[node]), int(self.adj_start[node + 1])):
                other = int(self.adj_node[k])
                if other in inside and other not in reached and \
                        int(self.adj_edge[k]) not in opened:
                    reached.add(other)
                    frontier.append(other)
        if not reached:
            return cut
        alive = np.array(sorted(self.pos[list(reached)].tolist()), dtype=np.int64)
        return np.setdiff1d(cut, alive, assume_unique=True)

    def closable(self, edges: np.ndarray) -> np.ndarray:
        """Whether closing each of ``edges`` changes the network: a normally-open, in-service
        switching device between two distinct nodes (anything else conducts already, or never).
        """
        return (self.edge_normal_open[edges] & self.edge_in_service[edges]
                & (self.edge_from[edges] != self.edge_to[edges]))

    def pick_up(self, dead: np.ndarray, opened: np.ndarray, closed: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Positions that closing the ``closed`` ties re-energizes, and the tie feeding each.

        ``dead`` are the positions de-energized with ``opened`` open (from
        :meth:`affected_positions`); ``closed`` are closable edges (:meth:`closable`) not in
        ``opened``. Closing only adds paths, so the nodes it can re-energize are among ``dead``
        and the normal-state islands: a breadth-first search starts at the dead end of every
        closed tie whose other end is live and walks, among those nodes only, the conducting
        edges not opened and the closed ties. A node reachable through several ties is credited
        to the nearest. Returns sorted positions and, for each, the tie's edge number.
        """
        n_energized = self.n_energized
        dead_set, opened_set = set(dead.tolist()), set(opened.tolist())

        def is_dead(node: int) -> bool:
            position = int(self.pos[node])
            return position >= n_energized or position in dead_set

        ties: dict[int, list[tuple[int, int]]] = {}
        via: dict[int, int] = {}
        queue: deque[int] = deque()
        for edge in closed.tolist():
            u, v = int(self.edge_from[edge]), int(self.edge_to[edge])
            ties.setdefault(u, []).append((v, edge))
            ties.setdefault(v, []).append((u, edge))
            if is_dead(u) != is_dead(v):
                start = u if is_dead(u) else v
                if start not in via:
                    via[start] = edge
                    queue.append(start)
        while queue:
            node = queue.popleft()
            lo, hi = int(self.adj_start[node]), int(self.adj_start[node + 1])
            steps = [*zip(self.adj_node[lo:hi].tolist(), self.adj_edge[lo:hi].tolist(),
                          strict=True), *ties.get(node, ())]
            for other, edge in steps:
                if other not in via and edge not in opened_set and is_dead(other):
                    via[other] = via[node]
                    queue.append(other)
        nodes = np.fromiter(via, dtype=np.int64, count=len(via))
        feeding = np.fromiter(via.values(), dtype=np.int64, count=len(via))
        positions = self.pos[nodes]
        keep = np.argsort(positions, kind="stable")
        return positions[keep], feeding[keep]

    def count_customers(self, positions: np.ndarray) -> int:
        """Customers (active accounts) whose transformer hangs at ``positions``."""
        return int((self.cum_customers[positions + 1] - self.cum_customers[positions]).sum())

    def count_transformers(self, positions: np.ndarray) -> int:
        """Transformers hanging at ``positions``."""
        return int((self.cum_transformers[positions + 1]
                    - self.cum_transformers[positions]).sum())

    def customers_at(self, positions: np.ndarray) -> np.ndarray:
        """Customer numbers (active accounts) at ``positions``, in position order."""
        return _gather(self.cum_customers, self.customers_by_position, positions)

    def transformers_at(self, positions: np.ndarray) -> np.ndarray:
        """Transformer numbers at ``positions``, in position order."""
        return _gather(self.cum_transformers, self.transformers_by_position, positions)

    # ------------------------------------------------------------------ tree walks

    def path_to_root(self, node: int) -> list[int]:
        """Tree edges from ``node`` up to its feeder's supply, nearest first (empty if dead)."""
        path = []
        edge = int(self.parent_edge[node])
        while edge >= 0:
            path.append(edge)
            child = int(self.tree_child[edge])
            up = int(self.edge_from[edge]) if int(self.edge_to[edge]) == child \
                else int(self.edge_to[edge])
            edge = int(self.parent_edge[up])
        return path

    def kind_name(self, edge: int) -> str:
        """The kind (line, cable, breaker, ...) of edge number ``edge``."""
        return EDGE_KINDS[int(self.edge_kind[edge])]

    def supply_entries(self, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where supply enters the part of the network holding ``position``, normal state:
        feeder numbers, supply nodes and entry edges (-1: the position is the supply node).

        The part is the position's **piece**, the network between supply nodes that it
        belongs to. A radial feeder's piece is fed through its feeder breaker alone; feeders
        joined by a closed path form one piece, fed through each of their breakers; a closed
        bus coupler joins supply nodes, not pieces. At a supply node itself, the entries are
        the feeders whose supply enters there. Empty for a dead position.
        """
        empty = np.zeros(0, dtype=np.int64)
        if position >= self.n_energized:
            return empty, empty, empty
        node = int(self.order[position])
        if int(self.parent_edge[node]) < 0:  # a tree root: a supply node
            feeders = np.flatnonzero(self.feeder_supply == node)
            return feeders, np.full(feeders.size, node), np.full(feeders.size, -1)
        branch = int(np.searchsorted(self.branch_pos, position, side="right")) - 1
        piece = int(self.branch_piece[branch])
        at = slice(int(self.piece_entry_start[piece]), int(self.piece_entry_start[piece + 1]))
        return (np.asarray(self.piece_entry_feeder[at]), np.asarray(self.piece_entry_node[at]),
                np.asarray(self.piece_entry_edge[at]))

    def feeder_at(self, position: int) -> str | None:
        """The feeder whose supply tree holds ``position`` (None at a station bus or off it)."""
        f = int(self.position_feeder[position])
        return self.feeder_ids[f].decode() if f >= 0 else None
