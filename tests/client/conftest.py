"""A real Polytrial server (SQLite file, loopback port) for the client's tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from polytrial.client import Client, RetryPolicy
from polytrial.server.app import PolytrialServer, create_server


@pytest.fixture(scope="module")
def server_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per test module; tests keep apart by experiment id."""
    db_path: Path = tmp_path_factory.mktemp("client-db") / "polytrial.db"
    server: PolytrialServer
    server, port = create_server(f"sqlite:///{db_path}", "127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace_s=1.0)


@pytest.fixture
def client(server_address: str) -> Iterator[Client]:
    with Client(
        server_address,
        timeout_s=30.0,
        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.05),
    ) as opened:
        yield opened


@pytest.fixture
def experiment_id(request: pytest.FixtureRequest) -> str:
    """A valid experiment id unique to the test (its name, shortened)."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())
    return ("e_" + name)[:63]
