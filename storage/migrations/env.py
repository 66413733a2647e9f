"""Alembic environment: the target is storage.schema.metadata; the connection comes from storage.migrations."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from storage.schema import metadata

config = context.config


def _configure(connection: Connection) -> None:
    # Batch mode lets the same revision alter SQLite tables (copy-and-move) and PostgreSQL ones (plain ALTER).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``--sql``) instead of running it."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run on the connection handed over by storage.migrations, or on one opened from sqlalchemy.url."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
