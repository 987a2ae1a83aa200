"""Record a switching change and bring the query index along: one call for the CLI and the API.

:func:`apply_switching` holds the index lock (:func:`~gridtopo.topology.index.index_lock`)
while it records the changes in the store (:func:`~gridtopo.db.switching.record_switching`,
all or nothing) and saves the index updated for the affected feeders only
(:func:`~gridtopo.topology.index.update.switched`; unchanged arrays are hard-linked, not
rewritten). A server's workers notice the new run by their next poll and wait on the lock,
so they read the updated index, never a stale or half-written one. When the index on disk
was not the model's just before the change (an ingest in between), it is rebuilt instead.

>>> from gridtopo.ingest.switching import SwitchingRow
>>> done = apply_switching(engine, [SwitchingRow("SB-00000009", None, False, None, "", 2)],
...                        origin="doctest", by="steward")
>>> done["edges_changed"], done["index"]
(1, 'updated')
>>> from gridtopo.topology.index import load_index
>>> load_index(engine).meta["switching_version"] == done["switching_version"]
True
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from gridtopo.db.switching import record_switching
from gridtopo.ingest.switching import SwitchingRow
from gridtopo.topology.index import build_index, index_dir, index_lock, load_index, save_index
from gridtopo.topology.index.store import ARRAYS, stamped
from gridtopo.topology.index.update import UNCHANGED, switched


def apply_switching(engine: Engine, rows: Sequence[SwitchingRow], *, origin: str,
                    by: str | None = None, pin: bool = False, item: str = "line"
                    ) -> dict[str, Any]:
    """Record ``rows`` and update the index (see the module); what was done, with timings."""
    started = time.perf_counter()
    directory = index_dir(engine)
    with index_lock(engine):
        base = load_index(engine)
        loaded = time.perf_counter()
        applied = record_switching(engine, rows, origin=origin, by=by, pin=pin, item=item)
        recorded = time.perf_counter()
        after = applied.after
        meta = {"ingest_run": after.run, "load": after.load,
                "switching_version": after.switching_version}
        if not stamped(base, applied.before.run, applied.before.load):
            unchanged: tuple[str, ...] = ()
            index, how = build_index(engine), "rebuilt"
        elif applied.edges:
            index, how, unchanged = switched(base, applied.edges, meta), "updated", UNCHANGED
        else:
            index = dataclasses.replace(base, meta={**base.meta, **meta})
            how, unchanged = "restamped", ARRAYS
        updated = time.perf_counter()
        save_index(index, directory, unchanged=unchanged)
    saved = time.perf_counter()
    return {
        "run_id": applied.run_id, "switching_version": after.switching_version,
        "changes": applied.change_ids, "replaced": applied.replaced,
        "edges_changed": len(applied.edges),
        "edges": {e: {"normal_open": s[0], "in_service": s[1]}
                  for e, s in sorted(applied.edges.items())},
        "index": how,
        "seconds": {"index_read": round(loaded - started, 3),
                    "record": round(recorded - loaded, 3),
                    "index_update": round(updated - recorded, 3),
                    "index_save": round(saved - updated, 3),
                    "total": round(saved - started, 3)},
    }
