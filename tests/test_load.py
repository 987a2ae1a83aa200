"""Bulk load on both stores: rows, geometry, spatial indexes, personal split, atomicity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, func, insert, select, text

from gridtopo.db import open_engine
from gridtopo.db.bulk import foreign_keys_checked_at_end, rollback_journal
from gridtopo.db.load import LoadResult, replace_model
from gridtopo.db.models import (
    Customer,
    CustomerPersonal,
    Edge,
    IngestRun,
    Link,
    Node,
    Transformer,
    utcnow,
)
from gridtopo.db.read import frames
from gridtopo.db.read.frames import read_frame
from gridtopo.errors import BulkLoadError
from gridtopo.reconcile.links import Reconciliation, reconcile

from .test_reconcile_rules import CUSTOMERS, EDGES, FEEDERS, STATIONS, areas, transformers


def tables(customers: pl.DataFrame = CUSTOMERS) -> dict[str, pl.DataFrame]:
    edges = EDGES.with_columns(
        pl.lit("line").alias("kind"),
        pl.lit(None, pl.Boolean).alias("normal_open"),
        pl.Series("geometry", ["LINESTRING(113 23, 113.005 23)", None,
                               "LINESTRING(113.5 23.5, 113.51 23.5)"]),
        pl.Series("_file", [2, 2, 2], dtype=pl.Int32),
        pl.Series("_line", [2, 3, 4], dtype=pl.Int64),
    )
    people = customers.with_columns(
        pl.Series("customer_name", ["张伟", "李娜", "王芳", "陈静"][: customers.height]),
        pl.lit("13800138000").alias("phone"),
        pl.lit("active").alias("status"),
        pl.Series("_file", [0] * customers.height, dtype=pl.Int32),
        pl.int_range(2, customers.height + 2, dtype=pl.Int64).alias("_line"),
    )
    return {"stations": STATIONS.with_columns(lon=pl.lit(113.1), lat=pl.lit(23.1)),
            "feeders": FEEDERS, "edges": edges,
            "transformers": transformers().with_columns(pl.lit("in_service").alias("status")),
            "transformer_areas": areas(), "customers": people}


def load(engine: Engine, data: dict[str, pl.DataFrame], recon: Reconciliation,
         run_id: int = 1) -> LoadResult:
    with engine.begin() as conn:
        if conn.scalar(select(IngestRun.id).where(IngestRun.id == run_id)) is None:
            conn.execute(insert(IngestRun).values(id=run_id, source="test",
                                                  gridtopo_version="test", status="succeeded",
                                                  started_at=utcnow()))
        return replace_model(conn, data, file_ids=[None, None, None],  # type: ignore[list-item]
                             reconciliation=recon, run_id=run_id)


def test_load_writes_every_table(engine: Engine) -> None:
    data = tables()
    written = load(engine, data, reconcile(data)).written
    assert written["customers"] == written["customer_personal"] == 4
    assert written["nodes"] == 5  # N1 N2 N3 N20 N21
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 4
        assert conn.scalar(select(CustomerPersonal.customer_name).where(
            CustomerPersonal.customer_id == "C1")) == "张伟"
        assert conn.scalar(select(Customer.source_line).where(Customer.customer_id == "C3")) == 4
        assert conn.scalar(select(func.count()).select_from(Customer).where(
            Customer.transformer_id.is_not(None))) == 3
        assert conn.scalar(select(func.count()).select_from(Link).where(
            Link.kind == "customer_transformer")) == 0  # customer links live on the customer
        assert conn.scalar(select(Edge.normal_open).where(Edge.edge_id == "E1")) is False
        assert conn.scalar(select(func.ST_X(Transformer.geom)).where(
            Transformer.transformer_id == "PB-3")) == pytest.approx(113.5)
        n2 = conn.execute(select(func.ST_X(Node.geom), Node.feeder_id).where(
            Node.node_id == "N2")).one()
        assert n2 == (pytest.approx(113.005), "XL-1")


def test_spatial_index_is_rebuilt_and_used(engine: Engine) -> None:
    data = tables()
    load(engine, data, reconcile(data))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            ids = conn.execute(text(
                "SELECT edge_id FROM edges WHERE ROWID IN (SELECT ROWID FROM "
                "SpatialIndex WHERE f_table_name = 'edges' AND search_frame = "
                "BuildMbr(113.4, 23.4, 113.6, 23.6, 4326))")).scalars().all()
            assert conn.execute(text("SELECT CheckSpatialIndex('edges', 'geom')")).scalar() == 1
        else:
            ids = conn.execute(text(
                "SELECT edge_id FROM edges WHERE geom && "
                "ST_MakeEnvelope(113.4, 23.4, 113.6, 23.6, 4326)")).scalars().all()
            assert conn.execute(text(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_edges_geom'"
            )).scalar() == 1
    assert ids == [EDGES["edge_id"][2]]  # the one line drawn inside the box


def test_reload_replaces_and_failure_keeps_previous_model(engine: Engine) -> None:
    data = tables()
    load(engine, data, reconcile(data))
    smaller = tables(CUSTOMERS.head(2))
    load(engine, smaller, reconcile(smaller), run_id=2)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 2
    decided = reconcile(data)
    broken = replace(decided, customer_links=decided.customer_links.with_columns(
        pl.lit(2.0).alias("link_confidence")))
    with pytest.raises(BulkLoadError, match="confidence"):  # the customers' first
        load(engine, data, broken, run_id=3)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 2
        assert conn.scalar(select(func.count()).select_from(CustomerPersonal)) == 2


def test_versions_archive_changed_and_removed_rows(engine: Engine) -> None:
    first = tables()
    assert load(engine, first, reconcile(first), run_id=1).changes["customers"] == {
        "added": 4, "changed": 0, "removed": 0}
    same = load(engine, first, reconcile(first), run_id=2)
    assert not same.changed
    moved = CUSTOMERS.head(3).with_columns(
        pl.when(pl.col("customer_id") == "C2").then(pl.lit("TQ1")).otherwise(pl.col("area_code"))
        .alias("area_code"))
    second = tables(moved)
    result = load(engine, second, reconcile(second), run_id=3)
    assert result.changes["customers"] == {"added": 0, "changed": 1, "removed": 1}
    # C2 now goes to PB-1 (a change of C2's own row); TQ1's and TQ2's spatial evidence
    # moved with C2's position
    assert result.changes["links"] == {"added": 0, "changed": 2, "removed": 0}
    with engine.connect() as conn:
        history = conn.execute(text(
            "SELECT customer_id, area_code, valid_from_run, valid_to_run FROM customers_history "
            "ORDER BY customer_id")).all()
        assert [tuple(r) for r in history] == [("C2", "TQ2", 1, 3), ("C4", "TQ404", 1, 3)]
        current = dict(conn.execute(text(
            "SELECT customer_id, valid_from_run FROM customers")).all())
        assert current == {"C1": 1, "C2": 3, "C3": 1}
        moved = conn.execute(text(
            "SELECT h.transformer_id, c.transformer_id FROM customers_history h "
            "JOIN customers c ON c.customer_id = h.customer_id")).all()
        assert [tuple(r) for r in moved] == [("PB-2", "PB-1")]


def test_rows_breaking_a_reference_are_refused_whole(engine: Engine) -> None:
    """Links naming a run that does not exist break a foreign key: on SQLite at insert, on
    PostgreSQL when the constraint set aside for the load is validated again."""
    data = tables()
    load(engine, data, reconcile(data))
    with pytest.raises(BulkLoadError, match=r"links|run_id"), engine.begin() as conn:
        replace_model(conn, tables(CUSTOMERS.head(1)), file_ids=[None, None, None],  # type: ignore[list-item]
                      reconciliation=reconcile(tables(CUSTOMERS.head(1))), run_id=999)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 4
        assert conn.scalar(select(func.count()).select_from(Link)) > 0


def test_rollback_journal_only_when_the_database_is_free(tmp_path: Path) -> None:
    """A bulk rewrite switches SQLite to a rollback journal only while no other connection
    has the database open (without waiting for it), and WAL is back afterwards."""
    engine = open_engine(f"sqlite:///{tmp_path / 'j.db'}", create=True)
    mode = "PRAGMA journal_mode"
    with rollback_journal(engine) as switched, engine.connect() as conn:
        assert switched and conn.exec_driver_sql(mode).scalar() == "delete"
    with engine.connect() as conn:
        assert conn.exec_driver_sql(mode).scalar() == "wal"
    reader = open_engine(f"sqlite:///{tmp_path / 'j.db'}")
    with reader.connect() as held:
        held.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
        with rollback_journal(engine) as switched, engine.connect() as conn:
            assert not switched and conn.exec_driver_sql(mode).scalar() == "wal"
    reader.dispose()
    engine.dispose()


def test_read_table_returns_every_row_across_blocks(engine: Engine,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Versioning reads stored keys and hashes block by block (SQLite) or by COPY: every row
    once, nulls kept, in the caller's transaction."""
    monkeypatch.setattr(frames, "BLOCK_ROWS", 2)
    data = tables()
    load(engine, data, reconcile(data))
    schema = {"customer_id": pl.Utf8, "transformer_id": pl.Utf8, "row_hash": pl.Int64}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM customer_personal WHERE customer_id = 'C2'"))
        conn.execute(text("DELETE FROM customers WHERE customer_id = 'C2'"))  # a rowid gap
        stored = frames.read_table(conn, "customers", schema).sort("customer_id")
        expected = read_frame(conn, "SELECT customer_id, transformer_id, row_hash FROM "
                              "customers ORDER BY customer_id", schema)
    assert stored["customer_id"].to_list() == ["C1", "C3", "C4"]
    assert stored["transformer_id"].null_count() == 1  # C4 is unlinked
    assert stored.equals(expected)


def test_foreign_keys_set_aside_are_checked_before_commit(engine: Engine) -> None:
    """With foreign keys checked at the end (how ingest runs on SQLite), a load whose links
    name a missing run is still refused whole, by the check instead of the insert."""
    data = tables()
    load(engine, data, reconcile(data))
    with engine.connect() as conn, foreign_keys_checked_at_end(conn):
        with pytest.raises(BulkLoadError, match=r"run_id|links|ingest_runs"), conn.begin():
            replace_model(conn, data, file_ids=[None, None, None],  # type: ignore[list-item]
                          reconciliation=reconcile(data), run_id=999)
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.scalar(select(func.count()).select_from(Customer)) == 4
