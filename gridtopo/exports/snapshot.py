"""What changed in the model between two snapshots, for planners.

:func:`diff` compares the model as of run A with the model as of run B and reports

* customers added and removed;
* customers moved to another transformer (their reconciled ``transformer_id``);
* transformers moved to another feeder (their ``transformer_feeder`` link);
* switching devices whose ``normal_open`` or ``in_service`` changed.

It reads only the row versions that begin or end between the two runs — a row unchanged
from A to B has one version spanning both and is never returned. The history tables find
theirs through their ``(valid_from_run, valid_to_run)`` index; the live tables' rows that
began after A are found through an index on ``valid_from_run`` where the table has one, else
by reading the whole table — at Guangdong size on SQLite, from a cold cache, over a minute
for the customers, whatever the amount of change. With A later than B the report reads from
A's side (what was added going from A to B is still "added").

>>> counts = diff(engine, "1", "2099-12-31").counts   # run 1 against the last snapshot by then
>>> sorted(counts.items())[:3]
[('customers_added', 0), ('customers_moved', 0), ('customers_removed', 0)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, select, union_all

from gridtopo.db.models import HISTORY_TABLES, SWITCHING_KINDS, Base
from gridtopo.db.read.asof import resolve_as_of
from gridtopo.exports.layers import Schema, iter_frames


@dataclass(frozen=True)
class SnapshotDiff:
    """The changes from the model as of ``run_a`` to the model as of ``run_b``."""

    run_a: int
    run_b: int
    customers_added: pl.DataFrame
    customers_removed: pl.DataFrame
    customers_moved: pl.DataFrame
    transformers_moved: pl.DataFrame
    switches_changed: pl.DataFrame

    @property
    def parts(self) -> dict[str, pl.DataFrame]:
        """Each kind of change with its rows."""
        return {
            "customers_added": self.customers_added,
            "customers_removed": self.customers_removed,
            "customers_moved": self.customers_moved,
            "transformers_moved": self.transformers_moved,
            "switches_changed": self.switches_changed,
        }

    @property
    def counts(self) -> dict[str, int]:
        """Number of rows of each kind of change."""
        return {name: frame.height for name, frame in self.parts.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the runs, the counts and every change."""
        return {"run_a": self.run_a, "run_b": self.run_b, "counts": self.counts,
                **{name: frame.to_dicts() for name, frame in self.parts.items()}}


def _versions(
    conn: Connection, table: str, a: int, b: int, schema: Schema, where: Any = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Versions of ``table``'s rows that differ between runs ``a < b``: those valid at ``a``
    that ended by ``b`` (before) and those valid at ``b`` that began after ``a`` (after)."""
    live, history = Base.metadata.tables[table], HISTORY_TABLES[table]

    def pick(t: Any, *conditions: Any) -> Any:
        extra = [where(t)] if where is not None else []
        return select(*(t.c[c] for c in schema)).where(*conditions, *extra)

    before = pick(history, history.c.valid_from_run <= a, history.c.valid_to_run > a,
                  history.c.valid_to_run <= b)
    after = union_all(
        pick(live, live.c.valid_from_run > a, live.c.valid_from_run <= b),
        pick(history, history.c.valid_from_run > a, history.c.valid_from_run <= b,
             history.c.valid_to_run > b),
    )
    frames = []
    for query in (before, select(after.subquery())):
        parts = list(iter_frames(conn, query, schema))
        frames.append(pl.concat(parts) if parts else pl.DataFrame(schema=schema))
    return frames[0], frames[1]


def _moved(before: pl.DataFrame, after: pl.DataFrame, key: str, what: str) -> pl.DataFrame:
    """Entities whose link target changed: ``key``, ``from_<what>``, ``to_<what>``."""
    joined = before.join(after, on="from_id", suffix="_after")
    return (joined.filter(pl.col("to_id") != pl.col("to_id_after"))
            .select(pl.col("from_id").alias(key), pl.col("to_id").alias(f"from_{what}"),
                    pl.col("to_id_after").alias(f"to_{what}"))
            .sort(key))


def diff_runs(conn: Connection, run_a: int, run_b: int) -> SnapshotDiff:
    """:class:`SnapshotDiff` between two resolved run ids."""
    a, b = sorted((run_a, run_b))
    chain = {"customer_id": pl.Utf8, "transformer_id": pl.Utf8}
    cust_before, cust_after = _versions(conn, "customers", a, b, chain)
    link = {"from_id": pl.Utf8, "to_id": pl.Utf8}
    tf = _versions(conn, "links", a, b, link, lambda t: t.c.kind == "transformer_feeder")
    switch = {"edge_id": pl.Utf8, "kind": pl.Utf8, "normal_open": pl.Boolean,
              "in_service": pl.Boolean}
    sw = _versions(conn, "edges", a, b, switch, lambda t: t.c.kind.in_(SWITCHING_KINDS))
    if run_a > run_b:  # report from A's side
        cust_before, cust_after = cust_after, cust_before
        tf, sw = tf[::-1], sw[::-1]
    added = (cust_after.join(cust_before, on="customer_id", how="anti")
             .select("customer_id").sort("customer_id"))
    removed = (cust_before.join(cust_after, on="customer_id", how="anti")
               .select("customer_id").sort("customer_id"))
    chain_before, chain_after = (f.rename({"customer_id": "from_id", "transformer_id": "to_id"})
                                 for f in (cust_before, cust_after))
    switches = sw[0].join(sw[1], on="edge_id", suffix="_after").filter(
        (pl.col("normal_open") != pl.col("normal_open_after"))
        | (pl.col("in_service") != pl.col("in_service_after"))
    ).select(
        "edge_id", "kind",
        pl.col("normal_open").alias("normal_open_before"), "normal_open_after",
        pl.col("in_service").alias("in_service_before"), "in_service_after",
    ).sort("edge_id")
    return SnapshotDiff(
        run_a=run_a, run_b=run_b, customers_added=added, customers_removed=removed,
        customers_moved=_moved(chain_before, chain_after, "customer_id", "transformer"),
        transformers_moved=_moved(*tf, "transformer_id", "feeder"),
        switches_changed=switches,
    )


def diff(engine: Engine, as_of_a: str | int, as_of_b: str | int) -> SnapshotDiff:
    """Changes from the model as of ``as_of_a`` to the model as of ``as_of_b`` (run ids or
    dates, as ``--as-of`` takes them)."""
    with engine.connect() as conn:
        run_a = resolve_as_of(conn, as_of_a)
        run_b = resolve_as_of(conn, as_of_b)
        assert run_a is not None and run_b is not None
        return diff_runs(conn, run_a, run_b)

