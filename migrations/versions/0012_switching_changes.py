"""Live switching state: ``switching_changes``, field operations recorded between exports.

Each row sets a device's ``normal_open`` and/or ``in_service`` at ``at``, recorded by whom,
when, why and from where, in the ingest run (``run_id``) that applied it; ``status`` and
``pinned`` say whether the next export may override it (``gridtopo/db/switching.py``).

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-07 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'switching_changes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.String(length=64), nullable=False),
        sa.Column('normal_open', sa.Boolean(), nullable=True),
        sa.Column('in_service', sa.Boolean(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('recorded_by', sa.String(length=128), nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('origin', sa.Text(), nullable=True),
        sa.Column('origin_line', sa.Integer(), nullable=True),
        sa.Column('pinned', sa.Boolean(), server_default='0', nullable=False),
        sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
        sa.Column('ended_run', sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('active', 'confirmed', 'overridden', 'replaced')",
                           name=op.f('ck_switching_changes_status')),
        sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'],
                                name=op.f('fk_switching_changes_run_id_ingest_runs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_switching_changes')),
    )
    op.create_index(op.f('ix_switching_changes_run_id'), 'switching_changes', ['run_id'],
                    unique=False)
    op.create_index('ix_switching_changes_status_device', 'switching_changes',
                    ['status', 'device_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_switching_changes_status_device', table_name='switching_changes')
    op.drop_index(op.f('ix_switching_changes_run_id'), table_name='switching_changes')
    op.drop_table('switching_changes')
