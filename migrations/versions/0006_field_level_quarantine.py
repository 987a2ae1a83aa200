"""Field-level quarantine: a distribution row with one unusable field is kept without it.

``quarantined_rows`` gets ``row_kept`` (the row was loaded; only this field was set aside) and
``entity_id`` (the row's key, to find a kept row in the model); ``ingest_files`` gets
``fields_quarantined``, counted apart from ``rows_read = rows_loaded + rows_quarantined +
rows_merged``. Existing rows were whole-row quarantines: ``row_kept`` false, no fields counted.
Plain ``ADD COLUMN`` with a default works in place on both stores.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('quarantined_rows', sa.Column('row_kept', sa.Boolean(), server_default='0',
                                                nullable=False))
    op.add_column('quarantined_rows', sa.Column('entity_id', sa.String(length=64)))
    op.add_column('ingest_files', sa.Column('fields_quarantined', sa.BigInteger(),
                                            server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('ingest_files', 'fields_quarantined')
    op.drop_column('quarantined_rows', 'entity_id')
    op.drop_column('quarantined_rows', 'row_kept')
