"""The query index: the normal-state supply forest as numpy arrays, for answers in microseconds.

The hot questions — "how many customers are below device X", "is customer C out" — must not
walk a graph per query at province size (2 M nodes, 14.3 M customers). The index numbers the
radial supply forest of the normal switching state in **DFS pre-order** from every feeder's
supply node, so the nodes below any tree edge are one contiguous range ``[tin, tout)``; prefix
sums of customers and transformers per position make "customers below X" two array reads, and
customers sorted by position make the list a slice.

Meshes are handled exactly: a conducting edge that is not in the tree (a closed loop or a
normally-closed tie) is a **chord**; a prefix count of chord ends tells whether a range has
one, and only then the range is searched (:meth:`QueryIndex.affected_positions`). Nodes not
energized in the normal state (islands) sit after the forest, each its own range.

Switching plans that also close normally-open ties (转供) stay exact without a whole-network
search: closing only adds paths, so what it re-energizes lies among the nodes the openings cut
off (and the normal-state islands), reached from the live end of a closed tie
(:meth:`QueryIndex.pick_up`).

Storage: one ``.npy`` file per array plus ``meta.json`` in a directory next to the database —
``PATH.db.index/`` for ``sqlite:///PATH.db``, ``./DBNAME.index/`` in the working directory for
PostgreSQL (``index_dir``). Arrays are memory-mapped on load, so loading is instant at any size.
The index describes the model of one ingest run; :func:`load_index` rebuilds it when the
database has a newer run.

>>> index = load_index(engine)
>>> index.count_customers(index.affected_positions(index.edge_indices(["SB-00000001"])))
1777
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Engine

from gridtopo.db.engine import backend_of, sqlite_path
from gridtopo.db.models import EDGE_KINDS, SWITCHING_KINDS
from gridtopo.db.read.frames import read_frame
from gridtopo.db.read.network import read_network
from gridtopo.db.runs import model_run
from gridtopo.errors import GridtopoError
from gridtopo.topology.graph import UnknownDeviceError, UnknownIdError, supply_nodes

__all__ = ["QueryIndex", "UnknownIdError", "build_index", "load_index"]

FORMAT_VERSION = 2
PROTECTIVE_KINDS = ("breaker", "fuse", "recloser")
"""Devices that trip on a fault by themselves; the rest of SWITCHING_KINDS are operated."""

CUSTOMER_SQL = (
    "SELECT customer_id, transformer_id, CASE WHEN status = 'closed' THEN 0 ELSE 1 END "
    "FROM customers"
)
CUSTOMER_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "customer_id": pl.Utf8, "transformer_id": pl.Utf8, "active": pl.Int8,
}


class IndexMissingError(GridtopoError):
    """No usable index file where one was required."""

    http_status = 503


def index_dir(engine: Engine) -> Path:
    """Where the index of ``engine``'s database lives (see the module docstring)."""
    if backend_of(engine.url) == "sqlite":
        path = sqlite_path(engine.url)
        return path.with_name(path.name + ".index")
    return Path.cwd() / f"{engine.url.database}.index"


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


def _lookup(sorted_ids: np.ndarray, ids: Sequence[str]) -> np.ndarray:
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
    """The arrays of the index (see the module docstring); build with :func:`build_index`.

    Node, edge, transformer, customer and feeder ids are sorted bytes arrays and an entity's
    number is its place there. ``pos``/``end`` give each node's pre-order position and the end
    of its subtree; ``order`` is the inverse (node at a position). ``parent_edge`` is the tree
    edge above a node (-1 at a root or off the forest), ``tree_child`` the node below a tree
    edge (-1 for other edges). ``n_energized`` positions come first; later ones are dead.
    ``edge_normal_open`` is the normal-open flag where it counts (switching devices only) and
    ``edge_in_service`` the service flag: together they say which edges a plan can close.
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
    n_energized: int
    meta: dict[str, object]

    # ------------------------------------------------------------------ ids

    def edge_indices(self, devices: Iterable[str]) -> np.ndarray:
        """Edge numbers of device ids; :class:`UnknownDeviceError` names the unknown ones."""
        devices = list(devices)
        found = _lookup(self.edge_ids, devices)
        if (found < 0).any():
            raise UnknownDeviceError(d for d, f in zip(devices, found, strict=True) if f < 0)
        return found

    def _ids(self, kind: str, sorted_ids: np.ndarray, ids: Iterable[str]) -> np.ndarray:
        ids = list(ids)
        found = _lookup(sorted_ids, ids)
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

    def feeder_at(self, position: int) -> str | None:
        """The feeder whose supply tree holds ``position`` (None at a station bus or off it)."""
        f = int(self.position_feeder[position])
        return self.feeder_ids[f].decode() if f >= 0 else None


ARRAYS = tuple(name for name in QueryIndex.__dataclass_fields__ if name not in
               ("n_energized", "meta"))


def _read(engine: Engine) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame, int]:
    run = model_run(engine) or 0
    edges, sources, transformers = read_network(engine)
    with engine.connect() as conn:
        customers = read_frame(conn, CUSTOMER_SQL, CUSTOMER_SCHEMA)
    return edges, sources, transformers, customers, run


def build_index(engine: Engine) -> QueryIndex:
    """Build the index of ``engine``'s model in memory (save it with :func:`save_index`)."""
    edges, sources, transformers, customers, run = _read(engine)
    return index_from_frames(edges, sources, transformers, customers, run)


def index_from_frames(
    edges: pl.DataFrame,
    sources: pl.DataFrame,
    transformers: pl.DataFrame,
    customers: pl.DataFrame,
    ingest_run: int = 0,
) -> QueryIndex:
    """The index of the model given as frames (schemas of ``db.read.network.read_network`` and
    ``CUSTOMER_SCHEMA``); the pure part of :func:`build_index`, used by tests too."""
    node_keys = pl.concat([edges["from_node"], edges["to_node"], transformers["node"],
                           sources["source_node"]]).drop_nulls().unique().sort()
    node_ids = _bytes(node_keys)
    edges = edges.sort("edge_id")
    edge_ids = _bytes(edges["edge_id"])
    u = _positions(node_keys, edges["from_node"])
    v = _positions(node_keys, edges["to_node"])
    kind = np.array([EDGE_KINDS.index(k) for k in edges["kind"].to_list()], dtype=np.int8)
    switching = np.isin(kind, [EDGE_KINDS.index(k) for k in SWITCHING_KINDS])
    in_service = edges["in_service"].to_numpy() == 1
    normal_open = (edges["normal_open"].to_numpy() == 1) & switching
    conducts = in_service & ~normal_open & (u != v)
    feeder_keys = pl.concat([edges["feeder_id"].drop_nulls(), sources["feeder_id"]]
                            ).unique().sort()
    feeder_ids = _bytes(feeder_keys)
    edge_feeder = _positions(feeder_keys, edges["feeder_id"])

    n = len(node_ids)
    sel = np.flatnonzero(conducts)
    a = np.concatenate([u[sel], v[sel]])
    b = np.concatenate([v[sel], u[sel]])
    e = np.concatenate([sel, sel])
    by = np.argsort(a, kind="stable")
    adj_node, adj_edge = b[by], e[by]
    adj_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=adj_start[1:])

    roots = _lookup(node_ids, sorted(set(supply_nodes(edges, sources).values())))
    pos, end, order, parent_edge, n_en = _dfs(n, roots, adj_start, adj_node, adj_edge)
    tree_child = np.full(len(edge_ids), -1, dtype=np.int64)
    has_parent = np.flatnonzero(parent_edge >= 0)
    tree_child[parent_edge[has_parent]] = has_parent

    chord = conducts & (tree_child < 0) & (pos[u] < n_en)
    chord_count = np.bincount(np.concatenate([pos[u[chord]], pos[v[chord]]]), minlength=n)
    cum_chords = np.concatenate(([0], np.cumsum(chord_count)))

    source_of = {f: (node, station) for f, node, station in sources.iter_rows()}
    feeder_source = _lookup(node_ids, [source_of.get(f.decode(), ("", ""))[0]
                                       for f in feeder_ids])
    feeder_station = _bytes(pl.Series([source_of.get(f.decode(), ("", ""))[1]
                                       for f in feeder_ids], dtype=pl.Utf8))
    position_feeder = np.full(n, -1, dtype=np.int64)
    labelled = [(int(pos[s]), i) for i, s in enumerate(feeder_source) if s >= 0]
    for start, f in sorted(labelled):
        position_feeder[start:int(end[order[start]])] = f

    transformers = transformers.sort("transformer_id")
    transformer_ids = _bytes(transformers["transformer_id"])
    transformer_node = _positions(node_keys, transformers["node"])
    tr_pos = pos[transformer_node]
    transformers_by_position = np.argsort(tr_pos, kind="stable")
    cum_transformers = np.concatenate(([0], np.cumsum(np.bincount(tr_pos, minlength=n))))

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

    meta = {"format": FORMAT_VERSION, "ingest_run": ingest_run,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "nodes": n, "energized_nodes": n_en, "edges": len(edge_ids),
            "transformers": len(transformer_ids), "customers": len(customer_ids),
            "feeders": len(feeder_ids), "chords": int(chord.sum())}
    return QueryIndex(
        node_ids=node_ids, edge_ids=edge_ids, edge_kind=kind, edge_feeder=edge_feeder,
        edge_from=u, edge_to=v, edge_conducts=conducts,
        edge_normal_open=normal_open, edge_in_service=in_service, transformer_ids=transformer_ids,
        transformer_node=transformer_node, customer_ids=customer_ids,
        customer_transformer=customer_transformer, customer_active=customer_active,
        feeder_ids=feeder_ids, feeder_source=feeder_source,
        feeder_station=feeder_station, pos=pos, end=end, order=order,
        parent_edge=parent_edge, tree_child=tree_child, position_feeder=position_feeder,
        cum_customers=cum_customers, customers_by_position=customers_by_position,
        cum_transformers=cum_transformers, transformers_by_position=transformers_by_position,
        cum_chords=cum_chords, adj_start=adj_start, adj_node=adj_node, adj_edge=adj_edge,
        n_energized=n_en, meta=meta,
    )


def _dfs(
    n: int, roots: np.ndarray, adj_start: np.ndarray, adj_node: np.ndarray, adj_edge: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Pre-order DFS of the conducting graph from ``roots``; unreached nodes numbered after.

    Returns position, subtree end, order (node at position), parent edge and the count of
    reached nodes. An entry popped from the stack belongs to the node that pushed it, so every
    subtree is contiguous in pre-order.
    """
    starts, nodes, eids = adj_start.tolist(), adj_node.tolist(), adj_edge.tolist()
    pos = [-1] * n
    parent_edge = [-1] * n
    parent = [-1] * n
    order: list[int] = []
    for root in roots.tolist():
        if root < 0 or pos[root] >= 0:
            continue
        stack = [(root, -1, -1)]
        while stack:
            node, via, up = stack.pop()
            if pos[node] >= 0:
                continue
            pos[node] = len(order)
            order.append(node)
            parent_edge[node], parent[node] = via, up
            for k in range(starts[node], starts[node + 1]):
                if pos[nodes[k]] < 0:
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


def save_index(index: QueryIndex, directory: Path) -> Path:
    """Write ``index`` to ``directory`` atomically (a new directory renamed into place)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(index, name), allow_pickle=False)
    meta = dict(index.meta, n_energized=index.n_energized)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def read_index(directory: Path) -> QueryIndex:
    """Memory-map a saved index; :class:`IndexMissingError` when absent or another format."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise IndexMissingError(f"no index at {directory}: run `gridtopo index build`") from err
    if meta.get("format") != FORMAT_VERSION:
        raise IndexMissingError(f"index at {directory} has format {meta.get('format')}, this "
                                f"gridtopo reads {FORMAT_VERSION}: run `gridtopo index build`")
    # plain ndarray views of the maps: numpy's memmap subclass costs microseconds per index
    arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
              .view(np.ndarray) for name in ARRAYS}
    return QueryIndex(**arrays, n_energized=int(meta.pop("n_energized")), meta=meta)


def load_index(engine: Engine, *, rebuild: bool = False) -> QueryIndex:
    """The index of ``engine``'s model: read from disk, or built and saved when it is missing,
    stale (an older ingest run) or ``rebuild`` is asked for."""
    directory = index_dir(engine)
    if not rebuild:
        try:
            index = read_index(directory)
        except IndexMissingError:
            pass
        else:
            if index.meta.get("ingest_run") == (model_run(engine) or 0):
                return index
    index = build_index(engine)
    save_index(index, directory)
    return read_index(directory)
