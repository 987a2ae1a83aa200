"""Outage notices: the ``notices`` outbox, ``notice_preferences``, ``webhooks`` and
``notice_deliveries``.

Notices are written in the same transaction as the outage-event change that causes them
(``gridtopo/outages/notices.py``), released to the pull feed in order of a ``seq`` cursor and
delivered to webhooks with retries (``gridtopo/outages/webhooks.py``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("planned", "reminder", "acknowledged", "etr", "restored")
STATUSES = ("pending", "released", "withdrawn")
CHANNELS = ("sms", "voice")
DELIVERY_STATUSES = ("pending", "delivered", "dead")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        'notices',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('recipient', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('etr', sa.DateTime(timezone=True), nullable=True),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('withdrawn_reason', sa.String(length=64), nullable=True),
        sa.Column('dedupe_key', sa.String(length=255), nullable=False),
        sa.CheckConstraint(_in('kind', KINDS), name=op.f('ck_notices_kind')),
        sa.CheckConstraint(_in('status', STATUSES), name=op.f('ck_notices_status')),
        sa.CheckConstraint(_in('channel', CHANNELS), name=op.f('ck_notices_channel')),
        sa.ForeignKeyConstraint(['event_id'], ['outage_events.id'],
                                name=op.f('fk_notices_event_id_outage_events')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
        sa.UniqueConstraint('seq', name=op.f('uq_notices_seq')),
        sa.UniqueConstraint('dedupe_key', name=op.f('uq_notices_dedupe_key')),
    )
    op.create_index(op.f('ix_notices_event_id'), 'notices', ['event_id'], unique=False)
    op.create_index(op.f('ix_notices_customer_id'), 'notices', ['customer_id'], unique=False)
    op.create_index('ix_notices_status_due_at', 'notices', ['status', 'due_at'], unique=False)
    op.create_table(
        'notice_preferences',
        sa.Column('customer_id', sa.String(length=64), nullable=False),
        sa.Column('opt_out', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_notice_preferences')),
    )
    op.create_table(
        'webhooks',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks')),
        sa.UniqueConstraint('name', name=op.f('uq_webhooks_name')),
    )
    op.create_table(
        'notice_deliveries',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in('status', DELIVERY_STATUSES),
                           name=op.f('ck_notice_deliveries_status')),
        sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], ondelete='CASCADE',
                                name=op.f('fk_notice_deliveries_notice_id_notices')),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE',
                                name=op.f('fk_notice_deliveries_webhook_id_webhooks')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_deliveries')),
        sa.UniqueConstraint('notice_id', 'webhook_id',
                            name=op.f('uq_notice_deliveries_notice_id_webhook_id')),
    )
    op.create_index('ix_notice_deliveries_status_next_attempt_at', 'notice_deliveries',
                    ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notice_deliveries_status_next_attempt_at',
                  table_name='notice_deliveries')
    op.drop_table('notice_deliveries')
    op.drop_table('webhooks')
    op.drop_table('notice_preferences')
    op.drop_index('ix_notices_status_due_at', table_name='notices')
    op.drop_index(op.f('ix_notices_customer_id'), table_name='notices')
    op.drop_index(op.f('ix_notices_event_id'), table_name='notices')
    op.drop_table('notices')
