"""Alembic environment: runs revisions on the connection `Database` passes in."""

from __future__ import annotations

from alembic import context
from polytrial.server.storage.rows import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
