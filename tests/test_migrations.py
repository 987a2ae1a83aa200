"""Alembic migrations on both stores: up, down, up again, and in step with the model."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from gridtopo.db import current_revision, downgrade, head_revision, open_engine, upgrade
from gridtopo.db.migrate import include_object
from gridtopo.db.models import MODEL_TABLES, Base


def _gridtopo_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) & set(MODEL_TABLES)


SPATIAL_TABLES = {"stations", "nodes", "edges", "transformers", "customers"}
HISTORY_GEOMETRY = {f"{t}_history" for t in SPATIAL_TABLES - {"nodes"}}
SPATIALLY_INDEXED = SPATIAL_TABLES - {"customers"}
"""Customer points are reached through their transformer, never looked up by place."""


def _geometry_tables(engine: Engine) -> set[str]:
    """Tables registered in the spatial metadata (``geometry_columns``) of either backend."""
    query = "SELECT f_table_name FROM geometry_columns"
    if engine.dialect.name == "postgresql":
        query += " WHERE f_table_schema = 'public'"
    with engine.connect() as conn:
        return set(conn.execute(text(query)).scalars())


def _spatial_index_tables(engine: Engine) -> set[str]:
    """SpatiaLite's R*Tree shadow tables (``idx_<table>_geom*``); PostgreSQL has none."""
    return {t for t in inspect(engine).get_table_names() if t.startswith("idx_")}


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    engine = open_engine(empty_db_url, create=True)
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert _gridtopo_tables(engine) == set(MODEL_TABLES)
    assert _geometry_tables(engine) == SPATIAL_TABLES | HISTORY_GEOMETRY

    assert downgrade(engine, "base") is None
    assert _gridtopo_tables(engine) == set()
    assert _geometry_tables(engine) == set()
    assert _spatial_index_tables(engine) == set()

    assert upgrade(engine) == head_revision()
    assert _gridtopo_tables(engine) == set(MODEL_TABLES)
    engine.dispose()


def test_every_revision_steps_down_and_up(empty_db_url: str) -> None:
    """Each migration's downgrade undoes its upgrade, one step at a time."""
    engine = open_engine(empty_db_url, create=True)
    upgrade(engine)
    revisions = []
    while (rev := current_revision(engine)) is not None:
        revisions.append(rev)
        downgrade(engine, "-1")
    assert revisions[0] == head_revision() and len(revisions) >= 2
    for rev in reversed(revisions):
        assert upgrade(engine, rev) == rev
    engine.dispose()


def test_upgrade_is_idempotent(engine: Engine) -> None:
    assert upgrade(engine) == head_revision()
    assert upgrade(engine) == head_revision()


def test_migrations_match_the_model(engine: Engine) -> None:
    """Autogenerate finds nothing to do: the migrations create exactly the ORM model."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": include_object,
                "compare_type": True,
                "target_metadata": Base.metadata,
            },
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_spatial_indexes_exist(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            enabled = dict(
                conn.execute(
                    text("SELECT f_table_name, spatial_index_enabled FROM geometry_columns")
                ).all()
            )
            assert enabled == {**dict.fromkeys(SPATIAL_TABLES, 0),
                               **dict.fromkeys(SPATIALLY_INDEXED, 1),
                               **dict.fromkeys(HISTORY_GEOMETRY, 0)}
        else:
            gist = set(
                conn.execute(
                    text("SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'")
                ).scalars()
            )
            assert gist >= SPATIALLY_INDEXED and "customers" not in gist
