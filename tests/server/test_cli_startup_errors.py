"""`polytrial serve` refuses bad options and unusable databases in one line."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

_SERVE = [sys.executable, "-m", "polytrial.server.cli", "serve"]


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    # A timeout, not a hang, if the server starts after all.
    return subprocess.run([*_SERVE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--address", "127.0.0.1:99999"),  # gRPC would listen on 34463
        ("--address", "127.0.0.1:-1"),  # and here on 65535
        ("--address", "bogus"),
        ("--address", ":56001"),
        ("--grace-s", "-1"),
        ("--grace-s", "nan"),
        ("--grace-s", "3601"),
        ("--orchestration-lease-s", "inf"),
        # Accepted once, after which every orchestration tick overflowed.
        ("--orchestration-lease-s", "1e308"),
        ("--orchestration-lease-s", "1e12"),
        ("--orchestration-lease-s", "86401"),
        ("--workers", "0"),
        ("--workers", "65"),
        ("--workers", "100000"),
    ],
)
def test_a_nonsense_option_value_is_a_usage_error_naming_the_option(
    tmp_path: Path, option: str, value: str
) -> None:
    db = tmp_path / "never.db"
    args = ["--db", str(db), "--address", "127.0.0.1:0", option, value]

    result = _serve(*args)

    assert result.returncode == 2, result.stderr
    assert option in result.stderr
    assert not db.exists()


def test_help_states_the_upper_bound_of_each_bounded_option() -> None:
    result = subprocess.run(
        [*_SERVE, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )

    assert "at most 3600" in result.stdout  # --grace-s
    assert "1 to 86400 (a day)" in result.stdout  # --orchestration-lease-s
    assert "At most 64" in result.stdout  # --workers


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _text_file(tmp_path: Path) -> str:
    path = tmp_path / "notes.db"
    path.write_text("not a database\n")
    return str(path)


def _unrelated_experiments_table(tmp_path: Path) -> str:
    path = tmp_path / "other-app.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY)")
    connection.close()
    return str(path)


_UNUSABLE: dict[str, tuple[Callable[[Path, int], str], str]] = {
    "unknown scheme": (lambda _tmp, _port: "foo://bar", "not a kind of database"),
    "missing folder": (
        lambda tmp, _port: str(tmp / "nonexistent" / "x.db"),
        "unable to open database file",
    ),
    "a folder": (lambda tmp, _port: str(tmp), "unable to open database file"),
    "a text file": (lambda tmp, _port: _text_file(tmp), "file is not a database"),
    "a foreign schema": (
        lambda tmp, _port: _unrelated_experiments_table(tmp),
        "table experiments already exists",
    ),
    "sqlite in memory": (lambda _tmp, _port: "sqlite://", "in-memory database"),
    "sqlite in memory, empty path": (
        lambda _tmp, _port: "sqlite:///",
        "in-memory database",
    ),
    "sqlite :memory:": (
        lambda _tmp, _port: "sqlite:///:memory:",
        "in-memory database cannot be served",
    ),
    "postgres refusing": (
        lambda _tmp, port: f"postgresql://nobody@127.0.0.1:{port}/x",
        "Connection refused",
    ),
}


@pytest.mark.parametrize("case", list(_UNUSABLE))
def test_an_unusable_database_is_one_error_line_naming_db(
    tmp_path: Path, refusing_port: int, case: str
) -> None:
    make_url, reason = _UNUSABLE[case]

    result = _serve(
        "--db", make_url(tmp_path, refusing_port), "--address", "127.0.0.1:0"
    )

    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    assert "--db" in errors[0]
    assert reason in errors[0]
    assert "Traceback" not in result.stderr
    assert "╭" not in result.stderr  # no Rich traceback panel either


def test_the_traceback_of_a_startup_error_shows_at_debug(tmp_path: Path) -> None:
    db = _text_file(tmp_path)

    result = _serve("--db", db, "--address", "127.0.0.1:0", "--log-level", "DEBUG")

    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "file is not a database" in result.stderr
