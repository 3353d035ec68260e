"""The schema comes from the migrations and matches the models; SQLite runs in WAL mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from dispatcher.database import connect, current_revision, head_revision, migrate
from dispatcher.state import Base
from paynudge.errors import ConfigError


def test_migrations_build_the_models_schema_and_are_idempotent(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'state.db'}")
    assert current_revision(engine) is None
    migrate(engine)
    migrate(engine)  # a second run changes nothing
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database_url: cannot parse"):
        connect("not a url")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot create the folder"):
        connect(f"sqlite:///{tmp_path / 'file' / 'state.db'}")
