"""What a gridtopo database holds: backend, spatial extension, schema, row counts, last run.

>>> status = database_status(engine)
>>> status["backend"], status["tables"]["feeders"], status["tables"]["customers"]
('sqlite', 2, 2499)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, text

from gridtopo.db.migrate import current_revision
from gridtopo.db.models import Base, IngestRun
from gridtopo.db.runlock import during_load

COUNTED_TABLES = (
    "stations",
    "feeders",
    "nodes",
    "edges",
    "transformers",
    "transformer_areas",
    "customers",
    "links",
    "quarantined_rows",
    "findings",
    "outage_events",
    "snapshots",
)


def spatial_version(engine: Engine) -> str:
    """``SpatiaLite x.y.z`` or ``PostGIS x.y.z`` for the open database."""
    query = (
        "SELECT spatialite_version()"
        if engine.dialect.name == "sqlite"
        else "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
    )
    name = "SpatiaLite" if engine.dialect.name == "sqlite" else "PostGIS"
    with engine.connect() as conn:
        version = conn.execute(text(query)).scalar()
    return f"{name} {version}" if version else f"{name} missing"


def database_status(engine: Engine) -> dict[str, Any]:
    """Summarise the database for ``gridtopo info`` and the API's health endpoint; never
    waits on a load (:func:`~gridtopo.db.runlock.during_load`)."""
    tables = Base.metadata.tables
    with during_load(engine), engine.connect() as conn:
        counts = {
            name: int(conn.execute(select(func.count()).select_from(tables[name])).scalar_one())
            for name in COUNTED_TABLES
        }
        last = conn.execute(
            select(IngestRun.id, IngestRun.status, IngestRun.started_at, IngestRun.source)
            .order_by(IngestRun.id.desc())
            .limit(1)
        ).first()
    return {
        "backend": engine.dialect.name,
        "spatial": spatial_version(engine),
        "revision": current_revision(engine),
        "tables": counts,
        "last_ingest": dict(last._mapping) if last else None,
    }
