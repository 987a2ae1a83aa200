"""Personal-data access log: every API answer that revealed customers' personal data.

``personal_access_log`` records the key, time, route, path, worker and the listed customers'
ids of each unmasked listing the HTTP API served (``gridtopo apikey access-log`` reads it);
the API's per-key personal-data limit counts the other workers' reads from it, by key and
time (``ix_personal_access_log_key_name_read_at``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'personal_access_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('key_name', sa.String(length=128), nullable=False),
        sa.Column('route', sa.String(length=128), nullable=False),
        sa.Column('path', sa.String(length=255), nullable=False),
        sa.Column('worker', sa.String(length=128), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.Column('customer_ids', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_access_log')),
    )
    op.create_index(op.f('ix_personal_access_log_read_at'), 'personal_access_log',
                    ['read_at'], unique=False)
    op.create_index('ix_personal_access_log_key_name_read_at', 'personal_access_log',
                    ['key_name', 'read_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_personal_access_log_key_name_read_at', table_name='personal_access_log')
    op.drop_index(op.f('ix_personal_access_log_read_at'), table_name='personal_access_log')
    op.drop_table('personal_access_log')
