"""Trouble calls and continuous prediction: ``calls``, ``meter_events``, ``predictions``.

Calls (95598, app, WeChat, SMS) and AMI last-gasp events are stored as received, with the
customer they resolve to and the answer given; predictions group them into predicted device
outages (``gridtopo/outages/prediction.py``). ``customers.meter_id`` and
``customer_personal.phone`` get indexes: callers are found by them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TROUBLES = ("no_supply", "partial_supply", "flicker", "wire_down", "behind_meter", "restored")
CALL_STATUSES = ("in_event", "in_prediction", "predicting", "behind_meter", "recorded",
                 "unresolved", "closed_account", "outside_territory")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        'calls',
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('body_hash', sa.String(length=64), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('trouble', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('photo', sa.Text(), nullable=True),
        sa.Column('identified_by', sa.String(length=16), nullable=False),
        sa.Column('identifier', sa.String(length=255), nullable=True),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('transformer_id', sa.String(length=64), nullable=True),
        sa.Column('feeder_id', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('signal', sa.Boolean(), nullable=False),
        sa.Column('processed', sa.Boolean(), nullable=False),
        sa.Column('prediction_id', sa.Integer(), nullable=True),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('answer', sa.JSON(), nullable=False),
        sa.CheckConstraint(_in('trouble', TROUBLES), name=op.f('ck_calls_trouble')),
        sa.CheckConstraint(_in('status', CALL_STATUSES), name=op.f('ck_calls_status')),
        sa.PrimaryKeyConstraint('call_id', name=op.f('pk_calls')),
    )
    op.create_index(op.f('ix_calls_customer_id'), 'calls', ['customer_id'], unique=False)
    op.create_index(op.f('ix_calls_processed'), 'calls', ['processed'], unique=False)
    op.create_index(op.f('ix_calls_prediction_id'), 'calls', ['prediction_id'], unique=False)
    op.create_index('ix_calls_feeder_id_at', 'calls', ['feeder_id', 'at'], unique=False)
    op.create_table(
        'meter_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('source_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('transformer_id', sa.String(length=64), nullable=True),
        sa.Column('feeder_id', sa.String(length=64), nullable=True),
        sa.Column('processed', sa.Boolean(), nullable=False),
        sa.Column('prediction_id', sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('power_off', 'power_on', 'closed')",
                           name=op.f('ck_meter_events_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_meter_events')),
        sa.UniqueConstraint('source_id', 'kind', 'at',
                            name=op.f('uq_meter_events_source_id_kind_at')),
    )
    op.create_index(op.f('ix_meter_events_customer_id'), 'meter_events', ['customer_id'],
                    unique=False)
    op.create_index(op.f('ix_meter_events_processed'), 'meter_events', ['processed'],
                    unique=False)
    op.create_index(op.f('ix_meter_events_prediction_id'), 'meter_events', ['prediction_id'],
                    unique=False)
    op.create_index('ix_meter_events_feeder_id_at', 'meter_events', ['feeder_id', 'at'],
                    unique=False)
    op.create_table(
        'predictions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('device_id', sa.String(length=64), nullable=False),
        sa.Column('device_kind', sa.String(length=16), nullable=True),
        sa.Column('feeder_id', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('pinned', sa.Boolean(), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('meter_events', sa.Integer(), nullable=False),
        sa.Column('customers_below', sa.Integer(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_signal_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('merged_into', sa.Integer(), nullable=True),
        sa.Column('decided_by', sa.String(length=128), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'merged', 'cancelled', 'restored')",
            name=op.f('ck_predictions_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    )
    op.create_index('ix_predictions_status_feeder_id', 'predictions', ['status', 'feeder_id'],
                    unique=False)
    op.create_index(op.f('ix_customers_meter_id'), 'customers', ['meter_id'], unique=False)
    op.create_index(op.f('ix_customer_personal_phone'), 'customer_personal', ['phone'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_customer_personal_phone'), table_name='customer_personal')
    op.drop_index(op.f('ix_customers_meter_id'), table_name='customers')
    op.drop_index('ix_predictions_status_feeder_id', table_name='predictions')
    op.drop_table('predictions')
    for name in ('feeder_id_at', 'prediction_id', 'processed', 'customer_id'):
        index = f'ix_meter_events_{name}'
        op.drop_index(index if name == 'feeder_id_at' else op.f(index), table_name='meter_events')
    op.drop_table('meter_events')
    for name in ('feeder_id_at', 'prediction_id', 'processed', 'customer_id'):
        index = f'ix_calls_{name}'
        op.drop_index(index if name == 'feeder_id_at' else op.f(index), table_name='calls')
    op.drop_table('calls')
