"""Database engine, sessions and migrations.

``open_store(settings)`` creates the data folder, connects, and upgrades the schema to the newest
Alembic revision (``api/migrations``); ``pavement serve`` and ``pavement worker`` both call it on
start, under a lock so that two processes starting together do not race.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings
from pavement.errors import ConfigError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_ID = 0x70617665  # "pave": advisory lock held while migrating


@dataclass(frozen=True)
class Store:
    """The database and the data folder of one service."""

    engine: Engine
    sessions: sessionmaker[Session]
    data_dir: Path

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits at the end of the block and rolls back on an error."""
        with self.sessions() as session, session.begin():
            yield session


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # the server reads while a worker writes
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigError(
            f"database URL {url!r} cannot be used: {exc}; give e.g. sqlite:///pavement.db or "
            "postgresql+psycopg://user@host/db (its driver comes with pip install 'pavement-inspection[api]')"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine, lock_dir: Path) -> None:
    """Bring the schema to the newest revision (no-op when it is there)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with contextlib.ExitStack() as stack:
        if engine.dialect.name == "sqlite":
            lock = stack.enter_context((lock_dir / ".migrate.lock").open("w"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def open_store(settings: Settings, migrate: bool = True) -> Store:
    """Create the data folder, connect to the database and (``migrate``) upgrade its schema."""
    data_dir = Path(settings.data_dir)
    try:
        for sub in ("", "uploads", "runs", "results"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the data folder {data_dir}: {exc.strerror or exc}; give --data a folder "
            "you may write to"
        ) from exc
    engine = make_engine(settings.db_url)
    if migrate:
        try:
            upgrade(engine, data_dir)
        except SQLAlchemyError as exc:
            raise ConfigError(f"cannot open or migrate the database {engine.url!r}: {exc}") from exc
    return Store(engine, sessionmaker(engine, expire_on_commit=False), data_dir)
