"""Initial schema: source model, reconciled links, ingest bookkeeping, quality, outages, snapshots.

On PostgreSQL the PostGIS extension is created first (the server package must be installed;
`make setup` installs it). On SQLite, SpatiaLite metadata is initialised on connect.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 04:51:55.541643
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('ingest_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('user_name', sa.String(length=128), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('profile', sa.Text(), nullable=True),
    sa.Column('gridtopo_version', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f('ck_ingest_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_runs'))
    )
    op.create_geospatial_table('nodes',
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('feeder_id', sa.String(length=64), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.PrimaryKeyConstraint('node_id', name=op.f('pk_nodes'))
    )
    op.create_geospatial_index('idx_nodes_geom', 'nodes', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_nodes_feeder_id'), 'nodes', ['feeder_id'], unique=False)
    op.create_table('outage_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expected_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('customers_interrupted', sa.BigInteger(), nullable=True),
    sa.Column('customer_minutes', sa.Float(), nullable=True),
    sa.CheckConstraint("kind IN ('planned', 'unplanned')", name=op.f('ck_outage_events_kind')),
    sa.CheckConstraint("status IN ('active', 'closed')", name=op.f('ck_outage_events_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outage_events'))
    )
    op.create_index('ix_outage_events_status', 'outage_events', ['status'], unique=False)
    op.create_table('steward_decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('link_kind', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('origin', sa.String(length=255), nullable=True),
    sa.CheckConstraint("link_kind IN ('customer_transformer', 'area_transformer', 'transformer_feeder', 'feeder_station')", name=op.f('ck_steward_decisions_link_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_steward_decisions')),
    sa.UniqueConstraint('link_kind', 'entity_id', name=op.f('uq_steward_decisions_link_kind_entity_id'))
    )
    op.create_table('audit_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ingest_run_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=True),
    sa.Column('scores', sa.JSON(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f('ck_audit_runs_status')),
    sa.ForeignKeyConstraint(['ingest_run_id'], ['ingest_runs.id'], name=op.f('fk_audit_runs_ingest_run_id_ingest_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_runs'))
    )
    op.create_table('ingest_files',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('table_name', sa.String(length=32), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('file_format', sa.String(length=16), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=True),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('rows_loaded', sa.BigInteger(), nullable=False),
    sa.Column('rows_quarantined', sa.BigInteger(), nullable=False),
    sa.Column('rows_merged', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('rows_read = rows_loaded + rows_quarantined + rows_merged', name=op.f('ck_ingest_files_rows_add_up')),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], name=op.f('fk_ingest_files_run_id_ingest_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_files'))
    )
    op.create_index(op.f('ix_ingest_files_run_id'), 'ingest_files', ['run_id'], unique=False)
    op.create_table('links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('from_id', sa.String(length=64), nullable=False),
    sa.Column('to_id', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('customer_transformer', 'area_transformer', 'transformer_feeder', 'feeder_station')", name=op.f('ck_links_kind')),
    sa.CheckConstraint("method IN ('source_code', 'cross_system_id', 'name_match', 'spatial_match', 'steward')", name=op.f('ck_links_method')),
    sa.CheckConstraint('confidence >= 0 AND confidence <= 1', name=op.f('ck_links_confidence')),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], name=op.f('fk_links_run_id_ingest_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_links')),
    sa.UniqueConstraint('kind', 'from_id', name=op.f('uq_links_kind_from_id'))
    )
    op.create_index('ix_links_kind_to_id', 'links', ['kind', 'to_id'], unique=False)
    op.create_table('outage_devices',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['outage_events.id'], name=op.f('fk_outage_devices_event_id_outage_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'device_id', name=op.f('pk_outage_devices'))
    )
    op.create_index(op.f('ix_outage_devices_device_id'), 'outage_devices', ['device_id'], unique=False)
    op.create_table('snapshots',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], name=op.f('fk_snapshots_run_id_ingest_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshots')),
    sa.UniqueConstraint('run_id', name=op.f('uq_snapshots_run_id'))
    )
    op.create_geospatial_table('customers',
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('area_name', sa.String(length=255), nullable=True),
    sa.Column('feeder_name', sa.String(length=255), nullable=True),
    sa.Column('station_name', sa.String(length=255), nullable=True),
    sa.Column('meter_id', sa.String(length=64), nullable=True),
    sa.Column('phase', sa.String(length=3), nullable=True),
    sa.Column('voltage_class', sa.String(length=16), nullable=True),
    sa.Column('contract_kva', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'closed')", name=op.f('ck_customers_status')),
    sa.CheckConstraint('contract_kva IS NULL OR contract_kva >= 0', name=op.f('ck_customers_contract_kva')),
    sa.ForeignKeyConstraint(['source_file_id'], ['ingest_files.id'], name=op.f('fk_customers_source_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customers'))
    )
    op.create_geospatial_index('idx_customers_geom', 'customers', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_customers_area_code'), 'customers', ['area_code'], unique=False)
    op.create_geospatial_table('edges',
    sa.Column('edge_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('feeder_id', sa.String(length=64), nullable=True),
    sa.Column('from_node', sa.String(length=64), nullable=False),
    sa.Column('to_node', sa.String(length=64), nullable=False),
    sa.Column('normal_open', sa.Boolean(), nullable=False),
    sa.Column('in_service', sa.Boolean(), nullable=False),
    sa.Column('length_m', sa.Float(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('line', 'cable', 'switch', 'breaker', 'fuse', 'recloser')", name=op.f('ck_edges_kind')),
    sa.ForeignKeyConstraint(['source_file_id'], ['ingest_files.id'], name=op.f('fk_edges_source_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('edge_id', name=op.f('pk_edges'))
    )
    op.create_geospatial_index('idx_edges_geom', 'edges', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_edges_feeder_id'), 'edges', ['feeder_id'], unique=False)
    op.create_index('ix_edges_from_node', 'edges', ['from_node'], unique=False)
    op.create_index('ix_edges_to_node', 'edges', ['to_node'], unique=False)
    op.create_table('feeders',
    sa.Column('feeder_id', sa.String(length=64), nullable=False),
    sa.Column('feeder_name', sa.String(length=255), nullable=True),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('voltage_kv', sa.Float(), nullable=True),
    sa.Column('source_node', sa.String(length=64), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=False),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['source_file_id'], ['ingest_files.id'], name=op.f('fk_feeders_source_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('feeder_id', name=op.f('pk_feeders'))
    )
    op.create_index(op.f('ix_feeders_source_node'), 'feeders', ['source_node'], unique=False)
    op.create_index(op.f('ix_feeders_station_id'), 'feeders', ['station_id'], unique=False)
    op.create_table('findings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('dimension', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('suggested_fix', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_note', sa.Text(), nullable=True),
    sa.Column('status_by', sa.String(length=128), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_seen_run', sa.Integer(), nullable=True),
    sa.Column('last_seen_run', sa.Integer(), nullable=True),
    sa.CheckConstraint("severity IN ('info', 'warning', 'error', 'critical')", name=op.f('ck_findings_severity')),
    sa.CheckConstraint("status IN ('open', 'accepted', 'fixed', 'waived')", name=op.f('ck_findings_status')),
    sa.ForeignKeyConstraint(['first_seen_run'], ['audit_runs.id'], name=op.f('fk_findings_first_seen_run_audit_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['last_seen_run'], ['audit_runs.id'], name=op.f('fk_findings_last_seen_run_audit_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_findings_fingerprint'))
    )
    op.create_index('ix_findings_entity', 'findings', ['entity_type', 'entity_id'], unique=False)
    op.create_index(op.f('ix_findings_last_seen_run'), 'findings', ['last_seen_run'], unique=False)
    op.create_index('ix_findings_rule_status', 'findings', ['rule', 'status'], unique=False)
    op.create_table('quarantined_rows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=True),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['ingest_files.id'], name=op.f('fk_quarantined_rows_file_id_ingest_files'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], name=op.f('fk_quarantined_rows_run_id_ingest_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantined_rows'))
    )
    op.create_index(op.f('ix_quarantined_rows_file_id'), 'quarantined_rows', ['file_id'], unique=False)
    op.create_index(op.f('ix_quarantined_rows_run_id'), 'quarantined_rows', ['run_id'], unique=False)
    op.create_geospatial_table('stations',
    sa.Column('station_id', sa.String(length=64), nullable=False),
    sa.Column('station_name', sa.String(length=255), nullable=True),
    sa.Column('voltage_kv', sa.Float(), nullable=True),
    sa.Column('in_service', sa.Boolean(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['source_file_id'], ['ingest_files.id'], name=op.f('fk_stations_source_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('station_id', name=op.f('pk_stations'))
    )
    op.create_geospatial_index('idx_stations_geom', 'stations', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('transformer_areas',
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('area_name', sa.String(length=255), nullable=True),
    sa.Column('feeder_name', sa.String(length=255), nullable=True),
    sa.Column('station_name', sa.String(length=255), nullable=True),
    sa.Column('capacity_kva', sa.Float(), nullable=True),
    sa.Column('pms_transformer_id', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['source_file_id'], ['ingest_files.id'], name=op.f('fk_transformer_areas_source_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('area_code', name=op.f('pk_transformer_areas'))
    )
    op.create_index(op.f('ix_transformer_areas_pms_transformer_id'), 'transformer_areas', ['pms_transformer_id'], unique=False)
    op.create_geospatial_table('transformers',
    sa.Column('transformer_id', sa.String(length=64), nullable=False),
    sa.Column('transformer_name', sa.String(length=255), nullable=True),
    sa.Column('feeder_id', sa.String(length=64), nullable=True),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('capacity_kva', sa.Float(), nullable=True),
    sa.Column('marketing_area_code', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('source_file_id', sa.Integer(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('in_service', 'retired')", name=op.f('ck_transformers_status')),
    sa.ForeignKeyConstraint(['source_file_id'], ['ingest_files.id'], name=op.f('fk_transformers_source_file_id_ingest_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('transformer_id', name=op.f('pk_transformers'))
    )
    op.create_geospatial_index('idx_transformers_geom', 'transformers', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_transformers_feeder_id'), 'transformers', ['feeder_id'], unique=False)
    op.create_index(op.f('ix_transformers_marketing_area_code'), 'transformers', ['marketing_area_code'], unique=False)
    op.create_index('ix_transformers_node', 'transformers', ['node'], unique=False)
    op.create_table('customer_personal',
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('fk_customer_personal_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_personal'))
    )


def downgrade() -> None:
    op.drop_table('customer_personal')
    op.drop_index('ix_transformers_node', table_name='transformers')
    op.drop_index(op.f('ix_transformers_marketing_area_code'), table_name='transformers')
    op.drop_index(op.f('ix_transformers_feeder_id'), table_name='transformers')
    op.drop_geospatial_index('idx_transformers_geom', table_name='transformers', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('transformers')
    op.drop_index(op.f('ix_transformer_areas_pms_transformer_id'), table_name='transformer_areas')
    op.drop_table('transformer_areas')
    op.drop_geospatial_index('idx_stations_geom', table_name='stations', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('stations')
    op.drop_index(op.f('ix_quarantined_rows_run_id'), table_name='quarantined_rows')
    op.drop_index(op.f('ix_quarantined_rows_file_id'), table_name='quarantined_rows')
    op.drop_table('quarantined_rows')
    op.drop_index('ix_findings_rule_status', table_name='findings')
    op.drop_index(op.f('ix_findings_last_seen_run'), table_name='findings')
    op.drop_index('ix_findings_entity', table_name='findings')
    op.drop_table('findings')
    op.drop_index(op.f('ix_feeders_station_id'), table_name='feeders')
    op.drop_index(op.f('ix_feeders_source_node'), table_name='feeders')
    op.drop_table('feeders')
    op.drop_index('ix_edges_to_node', table_name='edges')
    op.drop_index('ix_edges_from_node', table_name='edges')
    op.drop_index(op.f('ix_edges_feeder_id'), table_name='edges')
    op.drop_geospatial_index('idx_edges_geom', table_name='edges', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('edges')
    op.drop_index(op.f('ix_customers_area_code'), table_name='customers')
    op.drop_geospatial_index('idx_customers_geom', table_name='customers', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('customers')
    op.drop_table('snapshots')
    op.drop_index(op.f('ix_outage_devices_device_id'), table_name='outage_devices')
    op.drop_table('outage_devices')
    op.drop_index('ix_links_kind_to_id', table_name='links')
    op.drop_table('links')
    op.drop_index(op.f('ix_ingest_files_run_id'), table_name='ingest_files')
    op.drop_table('ingest_files')
    op.drop_table('audit_runs')
    op.drop_table('steward_decisions')
    op.drop_index('ix_outage_events_status', table_name='outage_events')
    op.drop_table('outage_events')
    op.drop_index(op.f('ix_nodes_feeder_id'), table_name='nodes')
    op.drop_geospatial_index('idx_nodes_geom', table_name='nodes', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('nodes')
    op.drop_table('ingest_runs')
