"""The metadata DB's schema under Alembic, on SQLite and PostgreSQL: migrations build exactly what the
models describe, a database from before migrations is adopted with its rows, workers starting at once
migrate once, and `sieve db upgrade` reports what it did."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres import on_sqlite_and_postgres
from sqlalchemy import inspect, select, text

from sieve.stores.database import (
    BASELINE,
    alembic_config,
    head_revision,
    init_db,
    make_engine,
    model_metadata,
    schema_revision,
)
from sieve.stores.metadata import Tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


@on_sqlite_and_postgres
def test_migrations_alone_build_what_the_models_describe(engine):
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), model_metadata())
        assert differences == [], "a model changed without a migration: add one under stores/migrations/versions"
        assert schema_revision(connection) == head_revision()


@on_sqlite_and_postgres
def test_a_fresh_database_is_created_at_the_newest_revision(engine):
    init_db(engine)
    with engine.connect() as connection:
        assert schema_revision(connection) == head_revision()
        assert set(model_metadata().tables) <= set(inspect(connection).get_table_names())


@on_sqlite_and_postgres
def test_a_database_from_before_migrations_is_adopted_and_keeps_its_rows(engine):
    with engine.begin() as connection:  # what `create_all` made before Alembic: the baseline, unversioned
        command.upgrade(alembic_config(connection), BASELINE)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(Tenant.__table__.insert(),
                           [{"id": "t1", "name": "kept", "created_at": datetime(2024, 1, 1, tzinfo=UTC)}])
    sessions = init_db(engine)
    with sessions() as session:
        assert session.scalars(select(Tenant.name)).all() == ["kept"]
    with engine.connect() as connection:
        assert schema_revision(connection) == head_revision()


# SQLite homes belong to one process (docs/architecture.md, "Stores"); many workers mean PostgreSQL
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_workers_starting_together_migrate_once(settings):
    engines = [make_engine(settings.resolved_database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def start(engine) -> None:
        try:
            init_db(engine)
        except BaseException as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engines[0].connect() as connection:
        assert schema_revision(connection) == head_revision()
    for e in engines:
        e.dispose()
    assert errors == []


@on_sqlite_and_postgres
def test_sieve_db_upgrade_reports_the_revisions(sieve, settings, monkeypatch):
    if settings.database_url:
        monkeypatch.setenv("SIEVE_DATABASE_URL", settings.database_url)
    first = json.loads(sieve(settings.home, "db", "upgrade", "--json").stdout)
    again = json.loads(sieve(settings.home, "db", "upgrade", "--json").stdout)
    assert first == {"from": None, "to": head_revision()}
    assert again == {"from": head_revision(), "to": head_revision()}
