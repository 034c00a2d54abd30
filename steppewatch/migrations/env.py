"""Alembic environment: migrations run on the connection steppewatch hands over.

The migrations are written by hand (``op.*``); ``target_metadata`` (the archive's tables)
matters only to ``alembic revision --autogenerate``, which would also need the outbox and
health modules imported for their tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from steppewatch.db import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic -x url=... upgrade head` from a shell
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).begin() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
