"""Run lifecycle: an ingest run records its owner process and a heartbeat, and a run whose
process died is marked ``interrupted`` (``gridtopo/db/runlock.py``).

Adds ``ingest_runs.pid`` and ``ingest_runs.heartbeat_at`` and lets ``status`` be
``interrupted``. On SQLite the CHECK constraint is rewritten in the schema itself (the way
SQLite documents for changes that leave the stored rows as they are): recreating the table,
as a batch migration would, deletes every run's files and quarantined rows through their
``ON DELETE CASCADE`` foreign keys.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('running', 'succeeded', 'failed')"
NEW = "status IN ('running', 'succeeded', 'failed', 'interrupted')"


def _check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
        bind.exec_driver_sql("PRAGMA writable_schema = ON")
        bind.execute(sa.text("UPDATE sqlite_master SET sql = replace(sql, :old, :new) "
                             "WHERE type = 'table' AND name = 'ingest_runs'"),
                     {"old": old, "new": new})
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
        return
    op.drop_constraint(op.f('ck_ingest_runs_status'), 'ingest_runs', type_='check')
    op.create_check_constraint(op.f('ck_ingest_runs_status'), 'ingest_runs', new)


def upgrade() -> None:
    op.add_column('ingest_runs', sa.Column('pid', sa.Integer(), nullable=True))
    op.add_column('ingest_runs', sa.Column('heartbeat_at', sa.DateTime(timezone=True),
                                           nullable=True))
    _check(OLD, NEW)


def downgrade() -> None:
    op.execute("UPDATE ingest_runs SET status = 'failed' WHERE status = 'interrupted'")
    _check(NEW, OLD)
    op.drop_column('ingest_runs', 'heartbeat_at')
    op.drop_column('ingest_runs', 'pid')
