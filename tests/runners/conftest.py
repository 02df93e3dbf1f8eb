"""Fixtures of the runner conformance suite: one example runner per language.

`runner` is module-scoped and parametrized over Python, Go and TypeScript, so
each test module starts each language's example runner once and every test in
it runs against all three. `polytrial_api` is an in-process Polytrial server
on a SQLite file, shared by a module's tests (each test uses its own
experiment).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from polytrial.server.app import create_server
from polytrial_testkit import Api, connect
from runner_kit import LANGUAGES, RunnerProcess, start_runner

# Short jobs keep the suite fast; a trial that needs a longer one sets the
# examples' `job_seconds` parameter.
JOB_S = 0.6


@pytest.fixture(scope="session")
def runner_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where compiled example runners (Go) are put, once per session."""
    return tmp_path_factory.mktemp("runner-builds")


@pytest.fixture(scope="module", params=LANGUAGES)
def runner(
    request: pytest.FixtureRequest, runner_build_dir: Path
) -> Iterator[RunnerProcess]:
    """An example runner without staging, one process per language and module."""
    yield from start_runner(request, runner_build_dir, job_s=JOB_S, staging_s=0.0)


@pytest.fixture(scope="module")
def polytrial_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A Polytrial server on a fresh SQLite file, and stubs for it."""
    db = tmp_path_factory.mktemp("polytrial") / "polytrial.db"
    server, port = create_server(f"sqlite:///{db}", "127.0.0.1:0", max_workers=8)
    server.start()
    api = connect(port)
    try:
        yield api
    finally:
        api.close()
        server.stop(grace_s=1.0)
