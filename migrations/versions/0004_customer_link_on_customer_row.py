"""Customer→transformer links move from ``links`` onto the customer row.

``customers`` (and its history twin) get ``transformer_id``, ``link_method`` and
``link_confidence``; the current ``customer_transformer`` rows of ``links`` are copied there and
removed. At 14 million customers, one link row per customer with two indexes cost more to load
than the customer rows themselves, and every query joined it back to the customer anyway.
For the same reason the customers' spatial index goes: no query finds customers by place, and
its R*Tree took a minute of every SQLite load.
Former versions already archived in ``links_history`` stay there (nothing is rewritten); the
downgrade moves the current links back.

SQLite adds the columns in place with their CHECK constraints inline (a batch rebuild would
have to recreate SpatiaLite's geometry column and triggers); PostgreSQL adds named constraints.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METHODS = "('source_code', 'cross_system_id', 'name_match', 'spatial_match', 'steward')"
CHECKS = {
    'link_method': f"link_method IS NULL OR link_method IN {METHODS}",
    'link_confidence': "link_confidence IS NULL OR (link_confidence >= 0 AND "
                       "link_confidence <= 1)",
}
COLUMNS = {'transformer_id': sa.String(64), 'link_method': sa.String(32),
           'link_confidence': sa.Float()}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for name, kind in COLUMNS.items():
        if sqlite:
            check = (f" CONSTRAINT ck_customers_{name} CHECK ({CHECKS[name]})"
                     if name in CHECKS else "")
            op.execute(f'ALTER TABLE customers ADD COLUMN {name} {kind.compile()}{check}')
        else:
            op.add_column('customers', sa.Column(name, kind))
            if name in CHECKS:
                op.create_check_constraint(op.f(f'ck_customers_{name}'), 'customers',
                                           CHECKS[name])
        op.add_column('customers_history', sa.Column(name, kind))
    op.create_index(op.f('ix_customers_transformer_id'), 'customers', ['transformer_id'],
                    unique=False)
    op.execute(
        "UPDATE customers SET transformer_id = l.to_id, link_method = l.method, "
        "link_confidence = l.confidence FROM links l "
        "WHERE l.kind = 'customer_transformer' AND l.from_id = customers.customer_id"
    )
    op.execute("DELETE FROM links WHERE kind = 'customer_transformer'")
    op.drop_geospatial_index('idx_customers_geom', table_name='customers',
                             postgresql_using='gist', column_name='geom')


def downgrade() -> None:
    op.create_geospatial_index('idx_customers_geom', 'customers', ['geom'], unique=False,
                               postgresql_using='gist', postgresql_ops={})
    op.execute(
        "INSERT INTO links (kind, from_id, to_id, method, confidence, run_id, valid_from_run, "
        "row_hash) SELECT 'customer_transformer', customer_id, transformer_id, link_method, "
        "link_confidence, valid_from_run, valid_from_run, NULL FROM customers "
        "WHERE transformer_id IS NOT NULL"
    )
    op.drop_index(op.f('ix_customers_transformer_id'), table_name='customers')
    for name in reversed(COLUMNS):
        if op.get_bind().dialect.name == 'postgresql' and name in CHECKS:
            op.drop_constraint(op.f(f'ck_customers_{name}'), 'customers', type_='check')
        op.drop_column('customers', name)
        op.drop_column('customers_history', name)
