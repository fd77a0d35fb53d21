"""Engine, schema migrations and session factory for the metadata DB (SQLite by default, PostgreSQL in production).

The schema is versioned by Alembic (`stores/migrations/`). `init_db` brings any database to the newest
revision: a database without our tables gets them straight from the models and is stamped current (one
step instead of replaying every migration; a test keeps models and migrations identical), one made before
migrations existed is recognised by its tables and stamped as the baseline first, and any other is upgraded.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from .metadata import Base

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema as it was before migrations existed
# any constant shared by all workers: PostgreSQL advisory lock that serialises schema changes
_MIGRATION_LOCK = 0x51E7E

# Chinese tags and metadata stay readable in the DB, so SQL LIKE over JSON text matches them
_json = partial(json.dumps, ensure_ascii=False)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_json
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # WAL lets readers run beside the ingest writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_json)


def model_metadata() -> MetaData:
    """Every table of the metadata DB (what migrations must produce)."""
    return Base.metadata


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def schema_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, "stores/migrations/versions holds no migration"
    return head


def upgrade(connection: Connection) -> None:
    """Bring the schema behind `connection` to the newest revision (see the module docstring)."""
    current = schema_revision(connection)
    if current == head_revision():
        return
    config = alembic_config(connection)
    if current is None:
        ours = set(model_metadata().tables) & set(inspect(connection).get_table_names())
        if not ours:
            model_metadata().create_all(connection)
            command.stamp(config, "head")
            return
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")


def init_db(engine: Engine) -> sessionmaker[Session]:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # workers starting together: one migrates, the rest wait
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        upgrade(connection)
    return sessionmaker(engine, expire_on_commit=False)


def upgrade_db(url: str) -> tuple[str | None, str]:
    """`sieve db upgrade`: the schema revision of `url` before, and after bringing it to the newest."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            before = schema_revision(connection)
        init_db(engine)
        return before, head_revision()
    finally:
        engine.dispose()
