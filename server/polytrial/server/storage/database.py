"""The database: engine setup per backend, migrations, and the transaction helper.

Every unit of work runs through `Database.run`, which opens one short
transaction, commits it, rolls it back on any exception and always closes the
session. A unit of work that loses a race the database reports (SQLite's
"database is locked", PostgreSQL's serialization failures and deadlocks) is
run again from the start, so callers never see those errors.

Durability. SQLite runs in WAL mode with `synchronous=NORMAL` by default:
a commit is in the WAL file (the OS's cache) when it is acknowledged, so it
survives a killed server process; only a power loss or OS crash can lose
the commits made since the last checkpoint, and never corrupts the file.
`synchronous=FULL` (`sqlite_synchronous="FULL"`) also survives a power loss
but fsyncs every commit, which here costs about 3.5 ms and serializes all
writers behind it. PostgreSQL keeps its own setting (`synchronous_commit`
on by default): every acknowledged write survives a power loss, and
concurrent commits share one WAL flush.

SQLite write transactions start with `BEGIN IMMEDIATE`, so two writers queue
on the busy timeout instead of failing when one upgrades a read lock.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from polytrial.server.errors import AlreadyExists, Unavailable
from polytrial.server.storage.repository import Repository
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

logger = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")
MAX_ATTEMPTS = 8
MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL error codes of a transaction that lost a race and may be rerun.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# Whether the transaction being opened on this thread writes; read by the
# SQLite `begin` hook to choose `BEGIN IMMEDIATE` over a deferred `BEGIN`.
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "polytrial_writing", default=True
)
# Advisory lock key that keeps replicas from migrating the same database at once.
_MIGRATION_LOCK_KEY = 0x706F6C79


def normalize_url(db_url: str) -> str:
    """Returns a SQLAlchemy URL for `db_url`, which may be a plain file path.

    A value without `://` is a SQLite file; `postgresql://` and `postgres://`
    select the psycopg 3 driver.
    """
    if "://" not in db_url:
        return f"sqlite:///{Path(db_url).expanduser().absolute()}"
    if db_url.startswith("postgres://"):
        db_url = "postgresql://" + db_url.removeprefix("postgres://")
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url.removeprefix("postgresql://")
    return db_url


def _is_retryable(exc: DBAPIError) -> bool:
    """Whether the database reported a lost race rather than a real fault."""
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        if "database is locked" in message or "database is busy" in message:
            return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in _RETRYABLE_SQLSTATES


def _sqlite_engine(url: str, busy_timeout_ms: int, synchronous: str) -> Engine:
    """Builds a SQLite engine in WAL mode with IMMEDIATE write transactions."""
    engine = create_engine(
        url,
        connect_args={
            "timeout": busy_timeout_ms / 1000,
            "check_same_thread": False,
        },
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the `begin` hook below: the driver's own
        # implicit BEGIN is deferred, which lets two writers deadlock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _WRITING.get() else "BEGIN")

    return engine


class Database:
    """One database (SQLite file or PostgreSQL) and its units of work.

    Args:
        db_url: A SQLAlchemy URL or a SQLite file path.
        pool_size: Connections kept open to PostgreSQL.
        sqlite_busy_timeout_ms: How long a SQLite writer waits for the lock
            before the transaction is retried from the start.
        sqlite_synchronous: "NORMAL" (survives a killed process) or "FULL"
            (also a power loss, at one fsync per commit); see above.
    """

    def __init__(
        self,
        db_url: str,
        *,
        pool_size: int = 10,
        sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
        sqlite_synchronous: str = "NORMAL",
    ) -> None:
        if sqlite_synchronous.upper() not in SQLITE_SYNCHRONOUS:
            raise ValueError(
                f"sqlite_synchronous must be NORMAL or FULL, got {sqlite_synchronous!r}"
            )
        self.url = normalize_url(db_url)
        backend = make_url(self.url).get_backend_name()
        self.backend = backend
        self._sqlite_writer = threading.Lock() if backend == "sqlite" else None
        if backend == "sqlite":
            self.engine = _sqlite_engine(
                self.url, sqlite_busy_timeout_ms, sqlite_synchronous.upper()
            )
        else:
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                # No pre-ping: it costs a round trip per transaction. A
                # connection that died with a database restart fails one
                # call as UNAVAILABLE (which clients retry) and SQLAlchemy
                # then replaces every pooled connection.
            )

    def migrate(self) -> None:
        """Upgrades the schema to the newest Alembic revision."""
        self.migrate_to("head")

    def migrate_to(self, revision: str) -> None:
        """Upgrades the schema to `revision` (tests use older ones)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if self.backend == "postgresql":
                # Replicas starting together would otherwise race to create
                # the same tables; the lock ends with this transaction.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _MIGRATION_LOCK_KEY},
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        logger.debug("database %s migrated to %s", self.engine.url, revision)

    def run(self, work: Callable[[Repository], T], *, write: bool = True) -> T:
        """Runs `work` in one transaction and returns its result.

        The transaction commits when `work` returns and rolls back when it
        raises. `work` may run more than once when the database reports a lost
        race, so it must not have effects outside the database.

        Args:
            work: The unit of work, given a repository bound to the transaction.
            write: Whether `work` writes; read-only work does not queue behind
                SQLite writers.

        Raises:
            AlreadyExists: a uniqueness rule of the schema was broken
                (ALREADY_EXISTS).
            Unavailable: the database stayed locked or unreachable
                (UNAVAILABLE).
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._run_once(work, write=write)
            except DBAPIError as exc:
                if isinstance(exc, IntegrityError):
                    raise AlreadyExists(
                        "resource", "the change conflicts with a stored resource"
                    ) from exc
                if not _is_retryable(exc) or attempt == MAX_ATTEMPTS:
                    if isinstance(exc, OperationalError):
                        raise Unavailable(
                            "the database is unavailable; retry later"
                        ) from exc
                    raise
                delay_s = min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.0)
                logger.warning(
                    "transaction lost a race (attempt %d), retrying in %.3fs: %s",
                    attempt,
                    delay_s,
                    exc.orig,
                )
                time.sleep(delay_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_once(self, work: Callable[[Repository], T], *, write: bool) -> T:
        if write and self._sqlite_writer is not None:
            # SQLite admits one writer per file. Threads of this process
            # queue here, in order, instead of polling the file lock through
            # SQLite's busy handler, which sleeps for milliseconds at a time.
            with self._sqlite_writer:
                return self._run_session(work, write=write)
        return self._run_session(work, write=write)

    def _run_session(self, work: Callable[[Repository], T], *, write: bool) -> T:
        token = _WRITING.set(write)
        try:
            # `begin()` commits when the block ends and rolls back when it
            # raises; closing the connection returns it to the pool.
            with self.engine.connect() as connection, connection.begin():
                repository = Repository(connection)
                try:
                    result = work(repository)
                except BaseException:
                    repository.close(flush=False)
                    raise
                repository.close()
                return result
        finally:
            _WRITING.reset(token)

    def dispose(self) -> None:
        """Closes every pooled connection."""
        self.engine.dispose()
