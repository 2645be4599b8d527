"""Alembic's environment: migrations run on the connection `migrations.config` gives.

The target is the tables built from the pandera contracts, so autogenerate writes the DDL that
brings a warehouse at the previous head to the contracts.
"""

from alembic import context

from spotify_platform.core.contracts.tables import metadata
from spotify_platform.core.warehouse.migrations import compare_type

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the warehouse migrations run through spotify_platform.core.warehouse.migrations "
        "(`spotify-platform init-warehouse`, or any run), not the alembic command"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=compare_type,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
