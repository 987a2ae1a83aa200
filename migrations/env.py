"""Alembic environment shared by both backends.

Run programmatically by :mod:`gridtopo.db.migrate` (which passes an open connection in
``config.attributes["connection"]``) or by the ``alembic`` command, which opens the database
named by ``-x db=URL``, ``$GRIDTOPO_DB`` or the default, exactly as the CLI does.
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection

from gridtopo.db.engine import open_engine
from gridtopo.db.migrate import include_object
from gridtopo.db.models import Base

config = context.config


def run_migrations(connection: Connection) -> None:
    """Configure Alembic for ``connection`` and run the requested migrations."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("gridtopo migrations run online only: pass a database, not --sql")

given: Connection | None = config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    engine = open_engine(context.get_x_argument(as_dictionary=True).get("db"), create=True)
    try:
        with engine.connect() as conn:
            run_migrations(conn)
            conn.commit()
    finally:
        engine.dispose()
