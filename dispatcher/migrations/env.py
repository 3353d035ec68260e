"""Alembic environment: migrations run on the connection :func:`dispatcher.database.migrate`
hands over (no alembic.ini, no URL of its own)."""

from __future__ import annotations

from alembic import context

from dispatcher.state import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
