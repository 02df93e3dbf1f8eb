"""An unexpected error in a tick can neither stall an orchestration nor flood the log.

The faults stand in for bugs: a step of the in-process server's own Python
objects (a trial's refresh, the suggest) is made to raise RuntimeError. The
server, its database and the runner process are real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Process, Served, create_hartmann6
from polytrial.client import OrchestrationState, TrialStatus
from polytrial.server.orchestration.driver import MAX_UNEXPECTED_ERRORS

pytestmark = pytest.mark.timeout(90)


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


def test_an_unexpected_error_on_one_trial_fails_it_and_the_others_go_on(
    server: Served,
    runners: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = runners("example", job_s=0.3)
    client = server.client
    create_hartmann6(client, "buggy", runner.address)
    assert server.server.orchestrator is not None
    deployments = server.server.orchestrator.driver.deployments
    refresh_outcome = deployments.refresh_outcome

    def refresh_with_a_bug(experiment_id: str, index: int, **kw: Any) -> Any:
        if index == 0:
            raise RuntimeError("a bug that trial 0 triggers")
        return refresh_outcome(experiment_id, index, **kw)

    monkeypatch.setattr(deployments, "refresh_outcome", refresh_with_a_bug)

    with caplog.at_level(logging.WARNING, logger="polytrial.server.orchestration"):
        client.start_orchestration(
            "buggy", max_trials=3, max_parallel_trials=1, poll_interval_s=0.1
        )
        done = client.wait_for_orchestration("buggy", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.COMPLETED
    trials = list(client.list_trials("buggy"))
    assert [t.status for t in trials] == [
        TrialStatus.FAILED,
        TrialStatus.COMPLETED,
        TrialStatus.COMPLETED,
    ]
    assert (
        "unexpected error refreshing this trial "
        f"{MAX_UNEXPECTED_ERRORS} times in a row (RuntimeError"
    ) in trials[0].status_reason
    # One traceback; the repeats are one line each.
    [traceback] = _tracebacks(caplog)
    assert "trial 0" in traceback.getMessage()


def test_a_tick_that_keeps_failing_backs_off_with_one_traceback_then_recovers(
    server: Served,
    runners: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = runners("example", job_s=0.3)
    client = server.client
    create_hartmann6(client, "backoff", runner.address)
    assert server.server.orchestrator is not None
    trials = server.server.orchestrator.driver.trials
    calls: list[float] = []

    def suggest_with_a_bug(*args: Any, **kw: Any) -> Any:
        calls.append(time.monotonic())
        raise RuntimeError("a bug in the suggest")

    with caplog.at_level(logging.WARNING, logger="polytrial.server.orchestration"):
        with monkeypatch.context() as patch:
            patch.setattr(trials, "suggest", suggest_with_a_bug)
            client.start_orchestration(
                "backoff", max_trials=2, max_parallel_trials=2, poll_interval_s=0.1
            )
            time.sleep(3.5)
        # Retried after 1 s, then 2 s: about 3 tries, where the scan (every
        # 0.25 s) used to retry a dozen times, each with a traceback.
        assert 2 <= len(calls) <= 4
        assert len(_tracebacks(caplog)) == 1

        # The fault gone, the orchestration carries on by itself.
        done = client.wait_for_orchestration(
            "backoff", timeout_s=60, poll_interval_s=0.2
        )

    assert done.state is OrchestrationState.COMPLETED
    assert done.trial_counts == {TrialStatus.COMPLETED: 2}
