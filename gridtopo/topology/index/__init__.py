"""The query index: the normal-state supply forest as numpy arrays, for answers in microseconds.

The hot questions — "how many customers are below device X", "is customer C out" — must not
walk a graph per query at province size (2 M nodes, 14.3 M customers). The index numbers the
supply forest of the normal switching state in **DFS pre-order**, one tree from every supply
node (where a source feeder's supply enters), so the nodes below any tree edge are one
contiguous range ``[tin, tout)``; prefix sums of customers and transformers per position make
"customers below X" two array reads, and customers sorted by position make the list a slice.

Meshes and several sources are handled exactly: a conducting edge that is not in the tree (a
closed loop, a normally-closed tie, a closed bus coupler or a closed path between feeders of
two sources — every supply node roots its own tree, so such edges join two trees) is a
**chord**; a prefix count of chord ends tells whether a range has one, and only then the range
is searched (:meth:`QueryIndex.affected_positions`). A node is de-energized by an outage
exactly when no remaining source reaches it. Nodes not energized in the normal state
(islands) sit after the forest, each its own range.

Switching plans that also close normally-open ties (转供) stay exact without a whole-network
search: closing only adds paths, so what it re-energizes lies among the nodes the openings cut
off (and the normal-state islands), reached from the live end of a closed tie
(:meth:`QueryIndex.pick_up`).

Four modules: :mod:`.structure` (the arrays and the questions answered on them),
:mod:`.build` (from the model's frames), :mod:`.update` (a switching change applied to the
affected feeders' trees only) and :mod:`.store` (the directory next to the database,
memory-mapped; rebuilt by :func:`load_index` for another model).

Two sources joined by a closed bus coupler: opening the coupler, or one feeder breaker, leaves
both feeders fed.

>>> import polars as pl
>>> from gridtopo.db.read.network import EDGE_SCHEMA, SOURCE_SCHEMA, TRANSFORMER_SCHEMA
>>> edges = pl.DataFrame([("B0", "breaker", "F0", "BUS0", "S0", 0, 1),
...                       ("B1", "breaker", "F1", "BUS1", "S1", 0, 1),
...                       ("CPL", "breaker", None, "BUS0", "BUS1", 0, 1),
...                       ("L0", "line", "F0", "S0", "N0", 0, 1),
...                       ("L1", "line", "F1", "S1", "N1", 0, 1),
...                       ("RING", "switch", None, "N0", "N1", 0, 1)],
...                      schema=EDGE_SCHEMA, orient="row")
>>> sources = pl.DataFrame([("F0", "S0", "A"), ("F1", "S1", "B")], schema=SOURCE_SCHEMA,
...                        orient="row")
>>> index = index_from_frames(
...     edges, sources, pl.DataFrame([("T0", "N0")], schema=TRANSFORMER_SCHEMA, orient="row"),
...     pl.DataFrame([("C0", "T0", 1)], schema=CUSTOMER_SCHEMA, orient="row"))
>>> [index.count_customers(index.affected_positions(index.edge_indices(devices)))
...  for devices in (["CPL"], ["B0"], ["B0", "RING"])]
[0, 0, 1]
"""

from gridtopo.topology.index.build import (
    CUSTOMER_SCHEMA,
    CUSTOMER_SQL,
    build_index,
    index_from_frames,
)
from gridtopo.topology.index.store import (
    FORMAT_VERSION,
    IndexMissingError,
    index_dir,
    index_lock,
    load_index,
    read_index,
    save_index,
)
from gridtopo.topology.index.structure import PROTECTIVE_KINDS, QueryIndex, UnknownIdError

__all__ = [
    "CUSTOMER_SCHEMA", "CUSTOMER_SQL", "FORMAT_VERSION", "PROTECTIVE_KINDS", "IndexMissingError",
    "QueryIndex", "UnknownIdError", "build_index", "index_dir", "index_from_frames", "index_lock",
    "load_index",
    "read_index", "save_index",
]
