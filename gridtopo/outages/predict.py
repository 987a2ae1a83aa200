"""Trouble-call prediction (故障报修研判): which device most likely opened, from who called.

Customers calling in about no power sit below the device that tripped. The prediction for the
calls of one feeder is the **lowest protective device** (breaker, recloser, fuse) above the
lowest common ancestor of the callers' transformers in the normal-state supply tree: the
smallest outage that explains every call. Calls on several feeders give one prediction per
feeder. ``share`` is the fraction of the customers below the device who called — low shares
mean a weak signal.

Calls file: CSV (UTF-8, optional BOM) with a header holding ``customer_id`` (or 户号, 用户编号);
other columns (time, phone, note) are ignored. A blank id or a short row is an error naming the
file and line; ids the model does not hold are reported, not fatal.

>>> from gridtopo.topology.index import load_index
>>> calls = ["0300100006667", "0300100006669", "0300100006673"]   # all fed by PB-0001001
>>> best = predict_outage(load_index(engine), calls)["predictions"][0]
>>> best["device"], best["kind"], best["calls"]
('SB-00000029', 'fuse', 3)
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from gridtopo.errors import InputError
from gridtopo.topology.index import PROTECTIVE_KINDS, QueryIndex
from gridtopo.topology.queries import _find

CUSTOMER_HEADERS = ("customer_id", "户号", "用户编号", "客户编号")
MAX_CALLS = 100_000
"""Trouble calls one prediction takes at most, from a calls file or over the API."""


def read_calls(path: Path) -> list[str]:
    """Customer ids of a calls file; :class:`InputError` naming the file and line if malformed.

    >>> lines = ["户号", "0300000000017", "0300000000018"]
    >>> _ = Path("calls.csv").write_text("\\n".join(lines), encoding="utf-8")
    >>> read_calls(Path("calls.csv"))
    ['0300000000017', '0300000000018']
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the calls file: {err}") from err
    if not rows:
        raise InputError(f"{path}: empty calls file; expected a header with customer_id")
    header = [h.strip() for h in rows[0]]
    column = next((header.index(h) for h in CUSTOMER_HEADERS if h in header), None)
    if column is None:
        raise InputError(f"{path}:1: no customer id column; the header needs one of "
                         f"{', '.join(CUSTOMER_HEADERS)} (found {', '.join(header)})")
    ids = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= column or not row[column].strip():
            raise InputError(f"{path}:{line}: no customer id in this row")
        ids.append(row[column].strip())
    if len(ids) > MAX_CALLS:
        raise InputError(f"{path}: {len(ids):,} calls, at most {MAX_CALLS:,} per prediction")
    return ids


def _ancestor(index: QueryIndex, a: int, b: int) -> bool:
    """Whether node ``a`` is ``b`` or above it in the supply tree."""
    return int(index.pos[a]) <= int(index.pos[b]) < int(index.end[a])


def _parent(index: QueryIndex, node: int) -> int:
    edge = int(index.parent_edge[node])
    if edge < 0:
        return -1
    u, v = int(index.edge_from[edge]), int(index.edge_to[edge])
    return u if v == node else v


def lowest_common_ancestor(index: QueryIndex, nodes: np.ndarray) -> int:
    """The lowest node above every one of ``nodes`` (all in one tree of the forest)."""
    positions = index.pos[nodes]
    low = int(index.order[int(positions.min())])
    high = int(index.order[int(positions.max())])
    while low >= 0 and not _ancestor(index, low, high):
        low = _parent(index, low)
    return low


def predict_outage(index: QueryIndex, customer_ids: Iterable[str]) -> dict[str, Any]:
    """Predict the opened device(s) explaining calls from ``customer_ids`` (see the module).

    Returns ``{"calls", "customers", "unknown_customers", "unlocated_customers",
    "predictions": [{"feeder_id", "device", "kind", "calls", "customers_below", "share"}]}``.
    """
    calls = list(customer_ids)
    distinct = list(dict.fromkeys(calls))
    unknown, unlocated, nodes = [], [], []
    for cid in distinct:
        c = _find(index.customer_ids, cid)
        if c < 0:
            unknown.append(cid)
            continue
        tr = int(index.customer_transformer[c])
        node = int(index.transformer_node[tr]) if tr >= 0 else -1
        if node < 0 or int(index.pos[node]) >= index.n_energized:
            unlocated.append(cid)
        else:
            nodes.append(node)
    predictions = []
    node_array = np.array(nodes, dtype=np.int64)
    groups = index.position_feeder[index.pos[node_array]] if nodes else np.zeros(0, np.int64)
    for f in np.unique(groups).tolist():
        members = node_array[groups == f]
        top = lowest_common_ancestor(index, members)
        edge = next((e for e in index.path_to_root(top)
                     if index.kind_name(e) in PROTECTIVE_KINDS), -1)
        if edge < 0:
            continue
        child = int(index.tree_child[edge])
        below = np.arange(int(index.pos[child]), int(index.end[child]))
        customers_below = index.count_customers(below)
        predictions.append({
            "feeder_id": index.feeder_ids[f].decode() if f >= 0 else None,
            "device": index.edge_ids[edge].decode(), "kind": index.kind_name(edge),
            "calls": int(members.size), "customers_below": customers_below,
            "share": round(int(members.size) / customers_below, 4) if customers_below else None,
        })
    predictions.sort(key=lambda p: -p["calls"])
    return {"calls": len(calls), "customers": len(distinct), "unknown_customers": unknown,
            "unlocated_customers": unlocated, "predictions": predictions}
