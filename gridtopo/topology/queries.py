"""Hot-path questions answered from the :class:`~gridtopo.topology.index.QueryIndex`.

* :func:`impact` — what opening devices (and closing ties, 转供) de-energizes: transformers and
  customers, per feeder, and what each closed tie picks up;
* :func:`upstream` — a customer's, transformer's or node's supply path: devices, feeder, station;
* :func:`downstream` — what hangs below a device: edges, transformers, customers.

A device list may mix feeders: the impact is reported in total and per feeder (``by_feeder``),
so a notifier sees which feeder each part comes from. Unknown ids raise
:class:`~gridtopo.topology.graph.UnknownDeviceError` or
:class:`~gridtopo.topology.index.UnknownIdError` naming them; asking to close a device that is
not a normally-open, in-service switching device (closing it would change nothing) raises
:class:`SwitchingError` naming it and why, rather than being ignored: a switching plan that
names the wrong device is a mistake its author must see.

>>> from gridtopo.topology.index import load_index
>>> index = load_index(engine)
>>> result = impact(index, ["SB-00000009"])
>>> result.customers, result.by_feeder["XL-000001"]["transformers"]
(1254, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridtopo.db.models import SWITCHING_KINDS
from gridtopo.errors import GridtopoError
from gridtopo.topology.index import PROTECTIVE_KINDS, QueryIndex, UnknownIdError


class SwitchingError(GridtopoError):
    """A switching request that cannot be carried out as asked: a device both opened and
    closed, or closed although it is not a normally-open, in-service switching device."""

    http_status = 422


@dataclass
class Impact:
    """De-energized positions of an outage and what hangs there.

    ``picked`` are the positions the closed ties keep (or bring) in supply, ``via`` the tie
    (edge number) feeding each; ``picked_up`` summarises them per tie.
    """

    devices: list[str]
    positions: np.ndarray
    transformers: int
    customers: int
    by_feeder: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    picked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    via: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    picked_up: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Counts as JSON-ready data (lists come from :func:`impact_customers`)."""
        return {"devices": self.devices, "closed": self.closed,
                "transformers": self.transformers, "customers": self.customers,
                "nodes": int(self.positions.size), "by_feeder": self.by_feeder,
                "picked_up": self.picked_up}


def _check_closing(index: QueryIndex, devices: Sequence[str], close: Sequence[str],
                  closed: np.ndarray) -> None:
    """:class:`SwitchingError` naming devices both opened and closed, and closed devices
    (edge numbers ``closed``) whose closing would change nothing, with the reason."""
    both = sorted(set(devices) & set(close))
    if both:
        raise SwitchingError(f"device(s) both opened and closed: {', '.join(both)}")
    problems = []
    closable = index.closable(closed).tolist()
    for device, edge, ok in zip(close, closed.tolist(), closable, strict=True):
        if ok:
            continue
        kind = index.kind_name(edge)
        if not index.edge_in_service[edge]:
            why = "out of service"
        elif kind not in SWITCHING_KINDS:
            why = f"a {kind}, not a switching device"
        elif not index.edge_normal_open[edge]:
            why = f"a normally closed {kind}"
        else:
            why = "joins a node to itself"
        problems.append(f"{device} ({why})")
    if problems:
        raise SwitchingError("cannot close, only normally-open in-service switching devices "
                             f"can be closed: {'; '.join(problems)}")


def impact(index: QueryIndex, devices: Sequence[str], close: Sequence[str] = ()) -> Impact:
    """What opening ``devices`` and closing the normally-open ties ``close`` de-energizes,
    compared with the normal switching state.

    Customers a closed tie picks up are not out: they are reported per tie in ``picked_up``
    (the tie, the feeder on its live side, nodes, transformers and customers it feeds).

    >>> from gridtopo.topology.index import load_index
    >>> index = load_index(engine)
    >>> impact(index, ["SB-00000001"]).customers
    1700
    >>> plan = impact(index, ["SB-00000009", "SB-00000014"], close=["SB-00000080"])
    >>> plan.customers, plan.picked_up[0]["via_feeder"], plan.picked_up[0]["customers"]
    (950, 'XL-000002', 304)
    """
    close = list(close)
    found = index.edge_indices([*devices, *close])
    edges, closed = found[:len(devices)], found[len(devices):]
    positions = index.affected_positions(edges)
    picked = via = np.zeros(0, dtype=np.int64)
    if close:  # the plain opening (the hot path) needs none of this
        _check_closing(index, devices, close, closed)
        picked, via = index.pick_up(positions, edges, closed)
        positions = np.setdiff1d(positions, picked, assume_unique=True)
    by_feeder: dict[str, dict[str, Any]] = {}
    for device, edge in zip(devices, edges.tolist(), strict=True):
        child = int(index.tree_child[edge])
        feeder = index.feeder_at(int(index.pos[child])) if child >= 0 else None
        if feeder is None:
            f = int(index.edge_feeder[edge])
            feeder = index.feeder_ids[f].decode() if f >= 0 else ""
        by_feeder.setdefault(feeder, {"devices": [], "transformers": 0, "customers": 0})
        by_feeder[feeder]["devices"].append(device)
    labels = index.position_feeder[positions]
    for f in np.unique(labels).tolist():
        at = positions[labels == f]
        name = index.feeder_ids[f].decode() if f >= 0 else ""
        entry = by_feeder.setdefault(name, {"devices": [], "transformers": 0, "customers": 0})
        entry["transformers"] = index.count_transformers(at)
        entry["customers"] = index.count_customers(at)
    return Impact(devices=list(devices), positions=positions,
                  transformers=index.count_transformers(positions),
                  customers=index.count_customers(positions), by_feeder=by_feeder,
                  closed=close, picked=picked, via=via,
                  picked_up=_picked_up(index, closed, picked, via))


def _picked_up(index: QueryIndex, closed: np.ndarray, picked: np.ndarray, via: np.ndarray
               ) -> list[dict[str, Any]]:
    """Per closed tie that feeds something: the feeder on its live side and what it feeds."""
    result = []
    for tie in closed.tolist():
        at = picked[via == tie]
        if not at.size:
            continue
        ends = [int(index.edge_from[tie]), int(index.edge_to[tie])]
        live = next(int(index.pos[n]) for n in ends if not np.isin(index.pos[n], at))
        result.append({
            "tie": index.edge_ids[tie].decode(), "via_feeder": index.feeder_at(live),
            "nodes": int(at.size), "transformers": index.count_transformers(at),
            "customers": index.count_customers(at),
            "transformer_ids": index.names(index.transformer_ids, index.transformers_at(at)),
        })
    return result


def impact_customers(index: QueryIndex, result: Impact) -> list[str]:
    """Customer ids (active accounts) that the outage ``result`` leaves without supply."""
    return index.names(index.customer_ids, index.customers_at(result.positions))


def impact_transformers(index: QueryIndex, result: Impact) -> list[str]:
    """Transformer ids that the outage ``result`` de-energizes."""
    return index.names(index.transformer_ids, index.transformers_at(result.positions))


def _node_of(index: QueryIndex, entity_id: str) -> tuple[str, int, dict[str, Any]]:
    """Resolve a customer, transformer or node id to its node: (kind, node, details)."""
    customer = _find(index.customer_ids, entity_id)
    if customer >= 0:
        tr = int(index.customer_transformer[customer])
        if tr < 0:
            raise UnlinkedCustomerError(entity_id)
        return "customer", int(index.transformer_node[tr]), {
            "transformer_id": index.transformer_ids[tr].decode()}
    tr = _find(index.transformer_ids, entity_id)
    if tr >= 0:
        return "transformer", int(index.transformer_node[tr]), {}
    node = _find(index.node_ids, entity_id)
    if node >= 0:
        return "node", node, {}
    raise UnknownIdError("customer, transformer or node", [entity_id])


def _find(ids: np.ndarray, key: str) -> int:
    raw = key.encode()
    if not len(ids) or len(raw) > ids.dtype.itemsize:
        return -1
    at = int(np.searchsorted(ids, raw))
    return at if at < len(ids) and ids[at] == raw else -1


class UnlinkedCustomerError(GridtopoError):
    """A customer with no reconciled transformer: its supply path is unknown."""

    http_status = 409

    def __init__(self, customer: str) -> None:
        super().__init__(f"customer {customer} has no reconciled transformer, so its supply "
                         "path is unknown (see `gridtopo ingest --unlinked`)")


def upstream(index: QueryIndex, entity_id: str) -> dict[str, Any]:
    """The supply path of a customer, transformer or node in the normal state.

    ``path`` lists the edges from the entity up to the feeder's supply, nearest first, each
    with its kind and whether it is a protective device; ``energized`` is false (and the path
    empty) for a node that no source reaches. ``sources`` lists every way supply enters the
    part of the network the node is in (:meth:`QueryIndex.supply_entries`): one entry, the
    feeder of ``feeder_id``, on a radial feeder; one per feeder when feeders of one or several
    stations are joined by a closed path, so the node is fed in parallel. Each names the
    feeder, its station, the supply node and the entry edge (the feeder breaker, or None at
    the supply node itself).

    >>> from gridtopo.topology.index import load_index
    >>> trace = upstream(load_index(engine), "PB-0001001")
    >>> trace["feeder_id"], trace["protective_devices"]
    ('XL-000001', ['SB-00000029', 'SB-00000025', 'SB-00000011', 'SB-00000001'])
    """
    kind, node, details = _node_of(index, entity_id)
    position = int(index.pos[node])
    path = [
        {"edge_id": index.edge_ids[e].decode(), "kind": index.kind_name(e),
         "protective": index.kind_name(e) in PROTECTIVE_KINDS}
        for e in index.path_to_root(node)
    ]
    feeder = index.feeder_at(position) if position < index.n_energized else None
    station = None
    if feeder is not None:
        f = _find(index.feeder_ids, feeder)
        station = index.feeder_station[f].decode() or None
    return {"id": entity_id, "type": kind, **details, "node": index.node_ids[node].decode(),
            "energized": position < index.n_energized, "feeder_id": feeder,
            "station_id": station, "path": path,
            "protective_devices": [p["edge_id"] for p in path if p["protective"]],
            "sources": _sources(index, position)}


def _sources(index: QueryIndex, position: int) -> list[dict[str, Any]]:
    """The supply entries of ``position`` as data, sorted by feeder and edge."""
    found = []
    for f, node, edge in zip(*(a.tolist() for a in index.supply_entries(position)),
                             strict=True):
        feeder = station = None
        if f >= 0:
            feeder, station = index.feeder_ids[f].decode(), index.feeder_station[f].decode()
        found.append({"feeder_id": feeder, "station_id": station or None,
                      "supply_node": index.node_ids[node].decode(),
                      "edge_id": index.edge_ids[edge].decode() if edge >= 0 else None})
    return sorted(found, key=lambda s: (s["feeder_id"] or "", s["edge_id"] or ""))


def downstream(index: QueryIndex, device: str, *, limit: int = 1000) -> dict[str, Any]:
    """What hangs below ``device`` in the normal state: edges, transformers and customers.

    Counts are complete; the id lists hold at most ``limit`` entries each.

    >>> from gridtopo.topology.index import load_index
    >>> downstream(load_index(engine), "SB-00000009")["transformers"]
    16
    """
    edge = int(index.edge_indices([device])[0])
    child = int(index.tree_child[edge])
    if child < 0:
        positions = np.zeros(0, dtype=np.int64)
    else:
        positions = np.arange(int(index.pos[child]), int(index.end[child]), dtype=np.int64)
    nodes = index.order[positions]
    below = index.parent_edge[nodes]
    below = below[(below >= 0) & (below != edge)]
    customers = index.customers_at(positions)
    transformers = index.transformers_at(positions)
    return {
        "device": device, "kind": index.kind_name(edge), "in_tree": child >= 0,
        "edges": int(below.size), "transformers": int(transformers.size),
        "customers": int(customers.size),
        "edge_ids": index.names(index.edge_ids, below[:limit]),
        "transformer_ids": index.names(index.transformer_ids, transformers[:limit]),
        "customer_ids": index.names(index.customer_ids, customers[:limit]),
    }
