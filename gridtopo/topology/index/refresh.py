"""Bringing a saved query index up to a new ingest run without rebuilding what did not change.

The supply forest (the DFS numbering, chords, pieces) depends on the network only: edges,
feeders' source nodes and their stations. Transformers and customers merely hang on it. So
after an ingest that changed no part of the network, :func:`refresh_index` keeps the forest of
the saved index and re-attaches transformers and customers to it
(:func:`~gridtopo.topology.index.build.attach`, vectorised, no graph search); when nothing of
what the index holds changed, only its run stamp moves. A network change that keeps the
network's shape (:data:`~gridtopo.topology.index.build.SHAPE`: a re-export's switches moved,
sections put out of service, or only what the index does not hold, such as lengths) searches
again only the trees the changed devices touch
(:func:`~gridtopo.topology.index.update.switched`). Any other network change (an edge added,
removed or reconnected, a feeder's source moved), a transformer on a node the forest does not
know, or an index of another format means a full build, as before.
The result equals a fresh :func:`~gridtopo.topology.index.build_index` in every array (the
equivalence test compares the answers), and is written atomically like any saved index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import polars as pl
from sqlalchemy import Engine

from gridtopo.db.read.frames import read_frame
from gridtopo.db.read.network import TRANSFORMER_SCHEMA, TRANSFORMER_SQL, read_network
from gridtopo.db.switching import ModelStamp, model_stamp
from gridtopo.topology.index.build import (
    SHAPE,
    Network,
    attach,
    build_index,
    network_arrays,
    read_customers,
)
from gridtopo.topology.index.store import (
    ARRAYS,
    FORMAT_VERSION,
    IndexMissingError,
    index_dir,
    index_lock,
    read_index,
    save_index,
)
from gridtopo.topology.index.structure import QueryIndex
from gridtopo.topology.index.update import UNCHANGED, switched

NETWORK_TABLES = ("stations", "feeders", "edges")
"""Tables whose change reshapes the supply forest (with the feeder→station links)."""


def _stamp(directory_meta: dict[str, object], stamp: ModelStamp) -> dict[str, object]:
    return {**directory_meta, "ingest_run": stamp.run, "load": stamp.load,
            "switching_version": stamp.switching_version,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def reattach(index: QueryIndex, transformers: pl.DataFrame, customers: pl.DataFrame,
             stamp: ModelStamp) -> QueryIndex | None:
    """``index`` with ``transformers`` and ``customers`` attached to its kept forest, or None
    when a transformer stands on a node the forest does not have (then it must be rebuilt)."""
    node_keys = pl.Series("node", index.node_ids.astype(str))
    known = transformers["node"].drop_nulls().is_in(node_keys.implode())
    if not known.all():
        return None
    arrays = attach(node_keys, np.asarray(index.pos), transformers, customers)
    meta = _stamp(index.meta, stamp)
    meta.update(transformers=len(arrays["transformer_ids"]),
                customers=len(arrays["customer_ids"]))
    return dataclasses.replace(index, meta=meta, **arrays)  # type: ignore[arg-type]


def switching_between(index: QueryIndex, network: Network) -> dict[str, tuple[bool, bool]] | None:
    """The edges whose normal state (``{edge_id: (normal_open, in_service)}``) differs between
    ``index`` and ``network`` when the two have the same shape (:data:`SHAPE`); None when they
    do not. Then a switching change is all that separates them, and
    :func:`~gridtopo.topology.index.update.switched` re-derives only the trees it touches."""
    a = network.arrays
    if not all(np.array_equal(getattr(index, name), a[name]) for name in SHAPE):
        return None
    normal_open, in_service = a["edge_normal_open"], a["edge_in_service"]
    differs = np.flatnonzero((np.asarray(index.edge_normal_open) != normal_open)
                             | (np.asarray(index.edge_in_service) != in_service))
    return {index.edge_ids[i].decode(): (bool(normal_open[i]), bool(in_service[i]))
            for i in differs.tolist()}


def refresh_index(engine: Engine, changed_tables: set[str], network_links_changed: bool, *,
                  customers: pl.DataFrame | None = None) -> str:
    """Update the saved index of ``engine`` (if there is one) to its live model after an
    ingest that changed ``changed_tables``; returns what was done: ``none`` (no saved index:
    the first query builds it, as before), ``stamped``, ``reattached``, ``switched`` (the
    network changed only in its switching state: the trees it touches searched again, see
    :func:`switching_between`) or ``rebuilt``. ``customers``
    (:data:`~gridtopo.topology.index.build.CUSTOMER_SCHEMA`) are the stored customers when the
    caller has them at hand, else they are read."""
    directory = index_dir(engine)
    with index_lock(engine):  # not while a server's worker builds or reads it
        try:
            index = read_index(directory)
        except IndexMissingError:
            return "none"
        with engine.connect() as conn:
            stamp = model_stamp(conn)
        attached = changed_tables & {"transformers", "customers", "links"}
        how = "reattached"
        if network_links_changed or changed_tables & set(NETWORK_TABLES):
            network = read_network(engine)
            states = switching_between(index, network_arrays(*network))
            if states is None:
                save_index(build_index(engine, customers, network), directory)
                return "rebuilt"
            if states:
                index, how = switched(index, states), "switched"
            if not attached:
                save_index(dataclasses.replace(index, meta=_stamp(index.meta, stamp)),
                           directory, unchanged=UNCHANGED if states else ARRAYS)
                return "switched" if states else "stamped"
        elif not attached:
            meta_path = directory / "meta.json"
            meta = json.loads(meta_path.read_text())
            if meta.get("format") == FORMAT_VERSION:
                tmp = meta_path.with_name("meta.json.tmp")
                tmp.write_text(json.dumps(_stamp(meta, stamp), indent=2))
                tmp.replace(meta_path)
                return "stamped"
        with engine.connect() as conn:
            transformers = read_frame(conn, TRANSFORMER_SQL, TRANSFORMER_SCHEMA)
        if customers is None:
            customers = read_customers(engine)
        updated = reattach(index, transformers, customers, stamp)
        if updated is None:
            save_index(build_index(engine, customers), directory)
            return "rebuilt"
        save_index(updated, directory)
        return how
