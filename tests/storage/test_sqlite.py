"""SQLite specifics: WAL, durable commits, and writers that never see a lock error."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from polytrial.server.storage import Database, ExperimentRecord, Repository
from sqlalchemy import text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "p.db"
    db = Database(str(path))
    db.migrate()
    now = datetime.now(UTC)
    db.run(
        lambda repo: repo.add_experiment(
            ExperimentRecord("exp", b"cfg", create_time=now, update_time=now)
        )
    )
    db.dispose()
    yield path


@pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("FULL", 2)])
def test_connections_use_wal_and_the_chosen_sync_level(
    db_file: Path, synchronous: str, level: int
) -> None:
    db = Database(str(db_file), sqlite_synchronous=synchronous)
    try:
        with db.engine.connect() as connection:
            mode = connection.execute(text("PRAGMA journal_mode")).scalar_one()
            sync = connection.execute(text("PRAGMA synchronous")).scalar_one()
        assert (mode, sync) == ("wal", level)
    finally:
        db.dispose()


def test_default_sync_level_is_normal(db_file: Path) -> None:
    db = Database(str(db_file))
    try:
        with db.engine.connect() as connection:
            sync = connection.execute(text("PRAGMA synchronous")).scalar_one()
        assert sync == 1
    finally:
        db.dispose()


def test_two_databases_on_one_file_allocate_dense_indices_concurrently(
    db_file: Path,
) -> None:
    # Two Database objects stand for two server processes on one file.
    dbs = [Database(str(db_file)), Database(str(db_file))]
    got: list[int] = []
    lock = threading.Lock()

    def worker(db: Database) -> None:
        for _ in range(10):
            index = db.run(lambda repo: repo.allocate_trial_indices("exp", 1))
            with lock:
                got.append(index)

    threads = [threading.Thread(target=worker, args=(dbs[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for db in dbs:
        db.dispose()
    assert sorted(got) == list(range(60))


def test_a_writer_that_finds_the_file_locked_retries_instead_of_failing(
    db_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = sqlite3.connect(db_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    # A busy timeout far shorter than the lock is held forces the retry path.
    impatient = Database(str(db_file), sqlite_busy_timeout_ms=10)
    try:
        release.start()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, "polytrial.server.storage.database"):
            index = impatient.run(lambda repo: repo.allocate_trial_indices("exp", 1))
        assert index == 0
        assert time.monotonic() - started > 0.05  # it did wait for the holder
        assert any("retrying" in r.getMessage() for r in caplog.records)
    finally:
        release.join()
        holder.close()
        impatient.dispose()


def test_readers_are_not_blocked_by_a_held_write_lock(db_file: Path) -> None:
    holder = sqlite3.connect(db_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    db = Database(str(db_file), sqlite_busy_timeout_ms=10)
    try:

        def read(repo: Repository) -> str:
            return repo.get_experiment("exp").experiment_id

        assert db.run(read, write=False) == "exp"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        db.dispose()
