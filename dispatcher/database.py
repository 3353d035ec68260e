"""Connecting to the dispatcher's database and bringing its schema up to date (Alembic).

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every transaction starts
with ``BEGIN IMMEDIATE`` so a read-then-write (claiming messages) never races another process.
PostgreSQL is chosen by the URL alone; there several dispatcher processes share the work with
``FOR UPDATE SKIP LOCKED`` (see :mod:`dispatcher.outbox` and :mod:`dispatcher.workflow`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from paynudge.config import Settings
from paynudge.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's lock before failing."""
SQLITE_CACHE_KIB = 65_536
"""Page cache per connection (SQLite's default is 2 MiB): the outbox's random-key indexes
(message ids, audit entity ids) outgrow the default at 100,000 reminders."""
SQLITE_CHECKPOINT_PAGES = 16_384
"""WAL pages (4 KiB) between automatic checkpoints (SQLite's default: 1,000). A planned batch
dirties pages all over the random-key indexes; checkpointing less often writes (and syncs) each
page once for several batches instead of once per batch."""
UPSERT_CHUNK = 5_000
"""Rows per INSERT statement (bounds statement size on both databases)."""


def connect(url: str) -> Engine:
    """An engine on ``url``; SQLite gets WAL, a busy timeout and immediate transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ConfigError(f"database_url: cannot parse {url!r} ({error})") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"database_url: cannot create the folder {folder} ({error.strerror})"
            ) from None
    engine = create_engine(parsed)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by the "begin" listener
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent: an up-to-date database is left alone)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as error:
        raise ConfigError(
            f"dispatcher database {engine.url.render_as_string()}: cannot migrate ({error.orig})"
        ) from None


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the settings' database, migrated to the latest schema first."""
    assert settings.database_url is not None  # filled by the settings validator
    engine = connect(settings.database_url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, object]],
    update: Sequence[str] = (),
) -> None:
    """Insert ``rows``; a row whose primary key exists updates ``update`` (none: left alone)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}.get(dialect)
    if insert is None:
        raise ConfigError(f"database_url: expected SQLite or PostgreSQL, found {dialect}")
    statement: Any = insert(table)  # the dialect's INSERT, with its ON CONFLICT clauses
    keys = [column.name for column in table.primary_key.columns]
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    for start in range(0, len(rows), UPSERT_CHUNK):
        session.execute(statement, list(rows[start : start + UPSERT_CHUNK]))
