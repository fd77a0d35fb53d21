"""Alembic's environment for the metadata DB: the same migrations on SQLite and PostgreSQL.

`sieve.stores.database` passes its own connection (`config.attributes["connection"]`); the `alembic`
command line gets the database the SIEVE_* settings name.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sieve.settings import get_settings
from sieve.stores.database import make_engine, model_metadata


def run_migrations(connection: Connection) -> None:
    # batch mode rebuilds SQLite tables for ALTERs SQLite lacks; on PostgreSQL it is plain ALTER
    context.configure(connection=connection, target_metadata=model_metadata(), render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run them against the database")
if (given := context.config.attributes.get("connection")) is not None:
    run_migrations(given)
else:
    engine = make_engine(get_settings().resolved_database_url)
    with engine.begin() as connection:
        run_migrations(connection)
    engine.dispose()
