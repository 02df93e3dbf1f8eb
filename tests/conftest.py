"""Shared fixtures: databases (SQLite file, fresh PostgreSQL schema) and servers.

- `db_url` runs a test once on a SQLite temp file and once on PostgreSQL (a
  fresh schema per test, dropped afterwards). The PostgreSQL half reads
  POLYTRIAL_TEST_POSTGRES_URL and is skipped only when that is unset, which
  CI never does.
- `api` is an in-process server on port 0 over a SQLite temp file;
  `any_api` the same over both databases.
- `serve_process` starts `polytrial serve` as a real subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from polytrial.server.app import create_server
from polytrial.server.storage import normalize_url
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from polytrial_testkit import Api, connect

POSTGRES_ENV = "POLYTRIAL_TEST_POSTGRES_URL"
# The installed console script, as users run it; `-m` where it is missing.
_SCRIPT = Path(sys.executable).with_name("polytrial")
_POLYTRIAL_COMMAND = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-m", "polytrial.server.cli"]
)
_LISTENING = re.compile(r"listening on [^\s]+:(\d+)")


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        # A developer without PostgreSQL may run the SQLite half alone; in CI a
        # missing server is a broken setup, so the PostgreSQL half fails loudly.
        message = f"{POSTGRES_ENV} is not set (`make test` sets it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return normalize_url(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema; dropped afterwards."""
    base = _postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temp directory."""
    return f"sqlite:///{tmp_path / 'polytrial.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


def _serve(url: str) -> Iterator[Api]:
    server, port = create_server(url, "127.0.0.1:0", max_workers=8)
    server.start()
    api = connect(port)
    try:
        yield api
    finally:
        api.close()
        server.stop(grace_s=1.0)


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    """An in-process server on a SQLite temp file, and stubs for it."""
    yield from _serve(sqlite_url)


@pytest.fixture
def any_api(db_url: str) -> Iterator[Api]:
    """An in-process server on each database, and stubs for it."""
    yield from _serve(db_url)


class ServeProcess:
    """A `polytrial serve` subprocess; its log is collected in `output`."""

    def __init__(self, db_url: str, log_level: str = "INFO") -> None:
        self.db_url = db_url
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [
                *_POLYTRIAL_COMMAND,
                "serve",
                "--db",
                db_url,
                "--address",
                "127.0.0.1:0",
                "--log-level",
                log_level,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            match = _LISTENING.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
                self._ready.set()
        self._ready.set()

    @property
    def port(self) -> int:
        if not self._ready.wait(timeout=60) or self._port is None:
            raise AssertionError("server did not start:\n" + "".join(self.output))
        return self._port

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def terminate(self) -> int:
        """SIGTERM, a graceful stop; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """Starts `polytrial serve` subprocesses; every one is killed at the end."""
    started: list[ServeProcess] = []

    def start(db_url: str, log_level: str = "INFO") -> ServeProcess:
        process = ServeProcess(db_url, log_level)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def pytest_configure(config: pytest.Config) -> None:
    """In CI, BoTorch must be installed: the BO tests skip without it locally."""
    if os.environ.get("CI") and importlib.util.find_spec("botorch") is None:
        raise pytest.UsageError(
            "botorch is not installed, so the BO tests would be skipped; "
            "`make setup` installs the `bo` extra"
        )
