"""Field cases c07 (a runner that always fails) and c08 (success without metrics).

See /work/shared/cases: a failing runner must be counted and stop the run;
a job that completes without its metrics must not hang the experiment.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import Process, Served, create_hartmann6
from fault_runner import REFUSAL, UNKNOWN_METRIC
from polytrial.client import OrchestrationState, TrialStatus

pytestmark = pytest.mark.timeout(90)


def test_runner_that_refuses_every_trial_stops_the_orchestration_as_failed(
    server: Served, runners: Callable[..., Process]
) -> None:
    # c07: budget 6, 3 in flight, 50% tolerated.
    runner = runners("refuse")
    client = server.client
    create_hartmann6(client, "c07", runner.address)

    client.start_orchestration(
        "c07",
        max_trials=6,
        max_parallel_trials=3,
        tolerated_failure_rate=0.5,
        poll_interval_s=0.2,
    )
    done = client.wait_for_orchestration("c07", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.FAILED
    assert "failure rate exceeded" in done.state_message
    assert "3 of 3 trials failed" in done.state_message
    trials = list(client.list_trials("c07"))
    assert [t.index for t in trials] == list(done.trial_indices)
    assert all(t.status is TrialStatus.FAILED for t in trials)
    assert all(REFUSAL in t.status_reason for t in trials)
    # The counts add up, and no trial was created past the failure.
    assert done.trials_created == len(trials) == 3
    assert sum(done.trial_counts.values()) == done.trials_created
    assert done.trial_counts == {TrialStatus.FAILED: 3}


def test_completed_job_without_data_fails_after_the_grace_period_naming_the_metric(
    server: Served, runners: Callable[..., Process]
) -> None:
    # c08, first runner: polls COMPLETED, fetch returns nothing.
    runner = runners("no-data")
    client = server.client
    create_hartmann6(client, "c08a", runner.address)
    grace_s = 1.0

    client.start_orchestration(
        "c08a",
        max_trials=4,
        max_parallel_trials=2,
        data_grace_period_s=grace_s,
        poll_interval_s=0.2,
    )
    done = client.wait_for_orchestration("c08a", timeout_s=60, poll_interval_s=0.2)

    trials = list(client.list_trials("c08a"))
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    # The failure limit is checked once three trials failed; on a slow machine
    # the fourth may still be in flight then, and is stopped (ABANDONED).
    assert len(failed) >= 3
    assert all(t.status is TrialStatus.ABANDONED for t in trials if t not in failed)
    for trial in failed:
        assert "no data for metric 'hartmann6'" in trial.status_reason
        assert "grace period" in trial.status_reason
        # It waited the grace period while RUNNING, then failed.
        assert trial.run_time is not None and trial.end_time is not None
        assert (trial.end_time - trial.run_time).total_seconds() >= grace_s
    # The failures count towards the failure limit.
    assert done.state is OrchestrationState.FAILED
    assert done.trial_counts[TrialStatus.FAILED] == len(failed)
    assert sum(done.trial_counts.values()) == done.trials_created == len(trials)


def test_unknown_metric_is_named_in_the_reason_and_never_stored(
    server: Served, runners: Callable[..., Process]
) -> None:
    # c08, second runner: the data is of a metric the experiment does not name.
    runner = runners("unknown-metric")
    client = server.client
    create_hartmann6(client, "c08b", runner.address)

    client.start_orchestration(
        "c08b",
        max_trials=3,
        max_parallel_trials=3,
        data_grace_period_s=0.5,
        poll_interval_s=0.2,
    )
    done = client.wait_for_orchestration("c08b", timeout_s=60, poll_interval_s=0.2)

    trials = list(client.list_trials("c08b"))
    assert len(trials) == 3
    for trial in trials:
        assert trial.status is TrialStatus.FAILED
        assert "no data for metric 'hartmann6'" in trial.status_reason
        assert f"'{UNKNOWN_METRIC}'" in trial.status_reason
        assert trial.observations == ()
    assert done.state is OrchestrationState.FAILED
    assert "3 of 3 trials failed" in done.state_message
