"""Outage switching actions: an event's devices are opened or closed.

``outage_devices.action`` is ``open`` (what an event always did) or ``close`` (a normally-open
tie closed by a switching plan to pick up load, 转供). Existing rows become ``open`` through the
server default. SQLite cannot add a CHECK constraint in place, so the table is rebuilt in
batch mode there; PostgreSQL alters it directly.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outage_devices') as batch_op:
        batch_op.add_column(sa.Column('action', sa.String(length=8), server_default='open',
                                      nullable=False))
        batch_op.create_check_constraint(op.f('ck_outage_devices_action'),
                                         "action IN ('open', 'close')")


def downgrade() -> None:
    with op.batch_alter_table('outage_devices') as batch_op:
        batch_op.drop_constraint(op.f('ck_outage_devices_action'), type_='check')
        batch_op.drop_column('action')
