"""Scorecards, API keys and record history for snapshots.

Versioned tables get ``valid_from_run`` and ``row_hash``; each gets a ``<name>_history`` twin
holding former versions with their validity interval (see ``VersionedMixin``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 05:03:53.779610
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_keys_name'))
    )
    op.create_index(op.f('ix_api_keys_key_prefix'), 'api_keys', ['key_prefix'], unique=False)
    op.create_geospatial_table('customers_history',
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('area_code', sa.String(length=64), nullable=True),
    sa.Column('area_name', sa.String(length=255), nullable=True),
    sa.Column('feeder_name', sa.String(length=255), nullable=True),
    sa.Column('station_name', sa.String(length=255), nullable=True),
    sa.Column('meter_id', sa.String(length=64), nullable=True),
    sa.Column('phase', sa.String(length=3), nullable=True),
    sa.Column('voltage_class', sa.String(length=16), nullable=True),
    sa.Column('contract_kva', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', 'valid_from_run', name=op.f('pk_customers_history'))
    )
    op.create_index('ix_customers_history_valid', 'customers_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_geospatial_table('edges_history',
    sa.Column('edge_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('feeder_id', sa.String(length=64), nullable=True),
    sa.Column('from_node', sa.String(length=64), nullable=True),
    sa.Column('to_node', sa.String(length=64), nullable=True),
    sa.Column('normal_open', sa.Boolean(), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=True),
    sa.Column('length_m', sa.Float(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('edge_id', 'valid_from_run', name=op.f('pk_edges_history'))
    )
    op.create_index('ix_edges_history_valid', 'edges_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_table('feeders_history',
    sa.Column('feeder_id', sa.String(length=64), nullable=False),
    sa.Column('feeder_name', sa.String(length=255), nullable=True),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('voltage_kv', sa.Float(), nullable=True),
    sa.Column('source_node', sa.String(length=64), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('feeder_id', 'valid_from_run', name=op.f('pk_feeders_history'))
    )
    op.create_index('ix_feeders_history_valid', 'feeders_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_table('links_history',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('from_id', sa.String(length=64), nullable=False),
    sa.Column('to_id', sa.String(length=64), nullable=True),
    sa.Column('method', sa.String(length=32), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'from_id', 'valid_from_run', name=op.f('pk_links_history'))
    )
    op.create_index('ix_links_history_valid', 'links_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_geospatial_table('stations_history',
    sa.Column('station_id', sa.String(length=64), nullable=False),
    sa.Column('station_name', sa.String(length=255), nullable=True),
    sa.Column('voltage_kv', sa.Float(), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('station_id', 'valid_from_run', name=op.f('pk_stations_history'))
    )
    op.create_index('ix_stations_history_valid', 'stations_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_table('transformer_areas_history',
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('area_name', sa.String(length=255), nullable=True),
    sa.Column('feeder_name', sa.String(length=255), nullable=True),
    sa.Column('station_name', sa.String(length=255), nullable=True),
    sa.Column('capacity_kva', sa.Float(), nullable=True),
    sa.Column('pms_transformer_id', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('area_code', 'valid_from_run', name=op.f('pk_transformer_areas_history'))
    )
    op.create_index('ix_transformer_areas_history_valid', 'transformer_areas_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_geospatial_table('transformers_history',
    sa.Column('transformer_id', sa.String(length=64), nullable=False),
    sa.Column('transformer_name', sa.String(length=255), nullable=True),
    sa.Column('feeder_id', sa.String(length=64), nullable=True),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('capacity_kva', sa.Float(), nullable=True),
    sa.Column('marketing_area_code', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('valid_from_run', sa.Integer(), nullable=False),
    sa.Column('row_hash', sa.BigInteger(), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('valid_to_run', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('transformer_id', 'valid_from_run', name=op.f('pk_transformers_history'))
    )
    op.create_index('ix_transformers_history_valid', 'transformers_history', ['valid_from_run', 'valid_to_run'], unique=False)
    op.create_table('scorecards',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('audit_run_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('entity_name', sa.String(length=255), nullable=True),
    sa.Column('completeness', sa.Float(), nullable=True),
    sa.Column('accuracy', sa.Float(), nullable=True),
    sa.Column('timeliness', sa.Float(), nullable=True),
    sa.Column('overall', sa.Float(), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.CheckConstraint("level IN ('province', 'region', 'station', 'feeder')", name=op.f('ck_scorecards_level')),
    sa.ForeignKeyConstraint(['audit_run_id'], ['audit_runs.id'], name=op.f('fk_scorecards_audit_run_id_audit_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scorecards')),
    sa.UniqueConstraint('audit_run_id', 'level', 'entity_id', name=op.f('uq_scorecards_audit_run_id_level_entity_id'))
    )
    op.create_index('ix_scorecards_level_entity', 'scorecards', ['level', 'entity_id'], unique=False)
    op.add_column('customers', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('customers', sa.Column('row_hash', sa.BigInteger(), nullable=True))
    op.add_column('edges', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('edges', sa.Column('row_hash', sa.BigInteger(), nullable=True))
    op.add_column('feeders', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('feeders', sa.Column('row_hash', sa.BigInteger(), nullable=True))
    op.add_column('links', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('links', sa.Column('row_hash', sa.BigInteger(), nullable=True))
    op.add_column('stations', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('stations', sa.Column('row_hash', sa.BigInteger(), nullable=True))
    op.add_column('transformer_areas', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('transformer_areas', sa.Column('row_hash', sa.BigInteger(), nullable=True))
    op.add_column('transformers', sa.Column('valid_from_run', sa.Integer(), nullable=True))
    op.add_column('transformers', sa.Column('row_hash', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('transformers', 'row_hash')
    op.drop_column('transformers', 'valid_from_run')
    op.drop_column('transformer_areas', 'row_hash')
    op.drop_column('transformer_areas', 'valid_from_run')
    op.drop_column('stations', 'row_hash')
    op.drop_column('stations', 'valid_from_run')
    op.drop_column('links', 'row_hash')
    op.drop_column('links', 'valid_from_run')
    op.drop_column('feeders', 'row_hash')
    op.drop_column('feeders', 'valid_from_run')
    op.drop_column('edges', 'row_hash')
    op.drop_column('edges', 'valid_from_run')
    op.drop_column('customers', 'row_hash')
    op.drop_column('customers', 'valid_from_run')
    op.drop_index('ix_scorecards_level_entity', table_name='scorecards')
    op.drop_table('scorecards')
    op.drop_index('ix_transformers_history_valid', table_name='transformers_history')
    op.drop_geospatial_table('transformers_history')
    op.drop_index('ix_transformer_areas_history_valid', table_name='transformer_areas_history')
    op.drop_table('transformer_areas_history')
    op.drop_index('ix_stations_history_valid', table_name='stations_history')
    op.drop_geospatial_table('stations_history')
    op.drop_index('ix_links_history_valid', table_name='links_history')
    op.drop_table('links_history')
    op.drop_index('ix_feeders_history_valid', table_name='feeders_history')
    op.drop_table('feeders_history')
    op.drop_index('ix_edges_history_valid', table_name='edges_history')
    op.drop_geospatial_table('edges_history')
    op.drop_index('ix_customers_history_valid', table_name='customers_history')
    op.drop_geospatial_table('customers_history')
    op.drop_index(op.f('ix_api_keys_key_prefix'), table_name='api_keys')
    op.drop_table('api_keys')
