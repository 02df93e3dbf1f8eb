"""The client's retries bridge a server restart: a completion sent while the
server is down lands once the server is back (README: "report back — even
after a server restart")."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from polytrial.client import Client, RangeParameter, RetryPolicy, TrialStatus
from polytrial.server.app import create_server

pytestmark = pytest.mark.timeout(120)


def test_complete_sent_while_the_server_is_down_lands_after_it_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    server, port = create_server(url, "127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    # A small budget keeps the test bounded; the default is 60 s.
    policy = RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.2, total_timeout_s=60)
    restarted: list[object] = []

    def restart_after_a_failed_attempt() -> None:
        deadline = time.monotonic() + 30
        while not any("UNAVAILABLE" in r.getMessage() for r in caplog.records):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        again, _ = create_server(url, address)
        again.start()
        restarted.append(again)

    caplog.set_level(logging.WARNING, logger="polytrial.client")
    try:
        with Client(address, retry=policy) as client:
            client.create_experiment(
                "restart",
                parameters=[RangeParameter("x", 0.0, 1.0)],
                objectives={"loss": "minimize"},
                generation_strategy="sobol",
            )
            trial = client.suggest("restart")
            server.stop(grace_s=1.0)

            helper = threading.Thread(target=restart_after_a_failed_attempt)
            helper.start()
            told = client.complete_trial(trial, 0.5)
            helper.join(timeout=60)

            assert restarted, "the server was never restarted"
            assert told.status is TrialStatus.COMPLETED
            stored = client.get_trial(("restart", trial.index))
            assert [(o.metric_name, o.mean) for o in stored.observations] == [
                ("loss", 0.5)
            ]
    finally:
        server.stop(grace_s=0)
        for again in restarted:
            again.stop(grace_s=0)  # type: ignore[attr-defined]
