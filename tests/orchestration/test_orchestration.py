"""The orchestration loop against real runner processes: budget, parallelism,
NaN data, a runner that dies, StopOrchestration, DeleteExperiment."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from conftest import Process, Served, create_hartmann6, serve_in_process, stop
from polytrial.client import (
    ChoiceParameter,
    Client,
    FailedPreconditionError,
    FixedParameter,
    MetricSource,
    NotFoundError,
    Orchestration,
    OrchestrationState,
    TrialStatus,
)

pytestmark = pytest.mark.timeout(90)


def _wait_until(
    client: Client,
    experiment_id: str,
    done: Callable[[Orchestration], bool],
    timeout_s: float = 60.0,
) -> Orchestration:
    deadline = time.monotonic() + timeout_s
    while True:
        current = client.get_orchestration(experiment_id)
        if done(current):
            return current
        assert time.monotonic() < deadline, f"gave up waiting: {current}"
        time.sleep(0.1)


def test_budget_is_used_exactly_and_parallelism_is_never_exceeded(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=0.3)
    client = server.client
    create_hartmann6(client, "budget", runner.address)

    started = client.start_orchestration(
        "budget", max_trials=7, max_parallel_trials=3, poll_interval_s=0.1
    )
    assert started.state is OrchestrationState.RUNNING
    done = client.wait_for_orchestration("budget", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.COMPLETED
    assert done.state_message == ""
    trials = list(client.list_trials("budget"))
    assert len(trials) == done.trials_created == 7
    assert done.trial_counts == {TrialStatus.COMPLETED: 7}
    assert all(t.final_observations() for t in trials)
    # A trial is in flight from its creation to its end; at equal times an end
    # comes first, since the next trial is created only after it is stored.
    events = sorted(
        [(t.create_time, 1) for t in trials] + [(t.end_time, -1) for t in trials],
        key=lambda event: (event[0], event[1]),
    )
    in_flight = peak = 0
    for _, change in events:
        in_flight += change
        peak = max(peak, in_flight)
    assert peak <= 3
    assert done.driver == ""
    assert client.get_best_arm("budget").metrics["hartmann6"].mean < 0


def test_nan_objective_fails_the_trial_with_the_runners_message(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("nan")
    client = server.client
    create_hartmann6(client, "nan", runner.address)

    client.start_orchestration(
        "nan", max_trials=3, max_parallel_trials=3, poll_interval_s=0.2
    )
    done = client.wait_for_orchestration("nan", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.FAILED
    for trial in client.list_trials("nan"):
        assert trial.status is TrialStatus.FAILED
        assert "not finite" in trial.status_reason
        assert trial.observations == ()


def test_runner_that_dies_mid_run_fails_its_trials_and_then_the_orchestration(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=30.0)
    client = server.client
    create_hartmann6(client, "dies", runner.address)
    client.start_orchestration(
        "dies",
        max_trials=6,
        max_parallel_trials=3,
        runner_unreachable_timeout_s=1.0,
        poll_interval_s=0.2,
    )
    _wait_until(
        client,
        "dies",
        lambda o: o.trial_counts.get(TrialStatus.RUNNING, 0) == 3,
    )

    runner.kill()
    done = client.wait_for_orchestration("dies", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.FAILED
    assert "failure rate exceeded" in done.state_message
    trials = list(client.list_trials("dies"))
    assert len(trials) == done.trials_created == 3
    for trial in trials:
        assert trial.status is TrialStatus.FAILED
        assert trial.status_reason.startswith("runner unreachable for")
        assert runner.address in trial.status_reason


def test_stop_orchestration_stops_trials_in_flight_and_creates_no_more(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=30.0)
    client = server.client
    create_hartmann6(client, "stop", runner.address)
    client.start_orchestration(
        "stop", max_trials=10, max_parallel_trials=2, poll_interval_s=0.1
    )
    _wait_until(
        client, "stop", lambda o: o.trial_counts.get(TrialStatus.RUNNING, 0) == 2
    )

    stopped = client.stop_orchestration("stop", reason="enough for today")

    assert stopped.state is OrchestrationState.STOPPED
    assert stopped.state_message == "enough for today"
    assert stopped.end_time is not None and stopped.driver == ""
    assert stopped.trials_created == 2
    assert set(stopped.trial_counts) <= {
        TrialStatus.EARLY_STOPPED,
        TrialStatus.ABANDONED,
    }
    for trial in client.list_trials("stop"):
        assert trial.status_reason == "enough for today"
    # A second stop changes nothing, and no tick creates trials any more.
    time.sleep(0.5)
    again = client.stop_orchestration("stop")
    assert again.state is OrchestrationState.STOPPED
    assert again.trials_created == 2
    assert len(list(client.list_trials("stop"))) == 2

    # A stopped orchestration is replaced by a new start, counted from zero.
    fresh = client.start_orchestration("stop", max_trials=1, poll_interval_s=0.1)
    assert fresh.uid != stopped.uid
    assert fresh.trials_created == 0 and fresh.state is OrchestrationState.RUNNING
    client.stop_orchestration("stop")


def test_timeout_stops_the_orchestration_and_its_trials(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=30.0)
    client = server.client
    create_hartmann6(client, "timeout", runner.address)

    client.start_orchestration(
        "timeout",
        max_trials=5,
        max_parallel_trials=2,
        timeout_s=1.0,
        poll_interval_s=0.2,
    )
    done = client.wait_for_orchestration("timeout", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.STOPPED
    assert "timeout of 1s passed" in done.state_message
    assert not {TrialStatus.CANDIDATE, TrialStatus.RUNNING} & set(done.trial_counts)
    assert sum(done.trial_counts.values()) == done.trials_created == 2


def test_exhausted_search_space_completes_the_orchestration_early(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=0.1)
    client = server.client
    client.create_experiment(
        "tiny",
        parameters=[
            ChoiceParameter("x1", (0.25, 0.75)),
            *(FixedParameter(f"x{i}", 0.5) for i in range(2, 7)),
        ],
        objectives={"hartmann6": "minimize"},
        generation_strategy="sobol",
        runner=runner.address,
        metric_sources=[MetricSource("hartmann6", "runner")],
    )

    client.start_orchestration("tiny", max_trials=5, poll_interval_s=0.1)
    done = client.wait_for_orchestration("tiny", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.COMPLETED
    assert done.state_message.startswith("search space exhausted")
    assert done.trial_counts == {TrialStatus.COMPLETED: 2}


def test_deleting_an_orchestrated_experiment_is_refused_until_it_is_stopped(
    db_url: str, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=30.0)
    served = serve_in_process(db_url)
    client = served.client
    try:
        create_hartmann6(client, "deleted", runner.address)
        client.start_orchestration(
            "deleted", max_trials=4, max_parallel_trials=2, poll_interval_s=0.1
        )
        _wait_until(
            client,
            "deleted",
            lambda o: o.trial_counts.get(TrialStatus.RUNNING, 0) == 2,
        )

        # Refused: the runner jobs of the RUNNING trials would go on unseen.
        with pytest.raises(FailedPreconditionError) as refused:
            client.delete_experiment("deleted")
        name = "experiments/deleted/orchestration"
        assert refused.value.reason == "ORCHESTRATION_RUNNING"
        assert refused.value.metadata == {"orchestration": name}
        assert name in refused.value.message
        assert "StopOrchestration" in refused.value.message
        # Nothing was deleted, and the orchestration goes on.
        assert client.get_experiment("deleted").experiment_id == "deleted"
        assert client.get_orchestration("deleted").state is OrchestrationState.RUNNING
        assert len(list(client.list_trials("deleted"))) >= 2

        stopped = client.stop_orchestration("deleted")
        assert not {TrialStatus.CANDIDATE, TrialStatus.RUNNING} & set(
            stopped.trial_counts
        )
        client.delete_experiment("deleted")
        create_hartmann6(client, "deleted", runner.address)

        # The new experiment under the same id has no orchestration and no
        # trials, and no tick of the old one creates any.
        with pytest.raises(NotFoundError):
            client.get_orchestration("deleted")
        time.sleep(0.5)  # several ticks' worth
        assert list(client.list_trials("deleted")) == []
    finally:
        stop(served)


def test_runner_that_cannot_poll_has_its_trials_completed_once_their_data_is_in(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("no-poll")
    client = server.client
    create_hartmann6(client, "nopoll", runner.address)

    client.start_orchestration(
        "nopoll", max_trials=3, max_parallel_trials=3, poll_interval_s=0.1
    )
    done = client.wait_for_orchestration("nopoll", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.COMPLETED
    assert done.trial_counts == {TrialStatus.COMPLETED: 3}


def test_failed_orchestrations_message_counts_agree_with_its_trial_counts(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=60.0)
    client = server.client
    create_hartmann6(client, "counts", runner.address)
    client.start_orchestration(
        "counts",
        max_trials=4,
        max_parallel_trials=4,
        min_failed_trials_for_failure_check=3,
        tolerated_failure_rate=0.5,
        poll_interval_s=0.1,
    )
    _wait_until(
        client, "counts", lambda o: o.trial_counts.get(TrialStatus.RUNNING, 0) == 4
    )

    # Three of four fail while the fourth is still running: the tick that
    # sees it ends the orchestration and stops the fourth.
    for trial in list(client.list_trials("counts"))[:3]:
        client.fail_trial(trial, reason="failed by the test")
    done = client.wait_for_orchestration("counts", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.FAILED
    assert "3 of 4 trials failed" in done.state_message
    assert not {TrialStatus.CANDIDATE, TrialStatus.RUNNING} & set(done.trial_counts)
    assert done.trial_counts[TrialStatus.FAILED] == 3
    listed = ", ".join(
        f"{status.name} {count}"
        for status, count in sorted(
            done.trial_counts.items(), key=lambda item: list(TrialStatus).index(item[0])
        )
    )
    assert done.state_message.endswith(
        f"; trials once those in flight were stopped: {listed}"
    )


def test_nan_in_run_metadata_fails_the_trials_stops_their_jobs_and_ends(
    server: Served, runners: Callable[..., Process]
) -> None:
    # The Python SDK runner's run() returns {"name": ..., "v": NaN}.
    runner = runners("nan-metadata")
    client = server.client
    create_hartmann6(client, "nanmeta", runner.address)

    client.start_orchestration(
        "nanmeta", max_trials=3, max_parallel_trials=3, poll_interval_s=0.2
    )
    done = client.wait_for_orchestration("nanmeta", timeout_s=60, poll_interval_s=0.2)

    assert done.state is OrchestrationState.FAILED
    trials = list(client.list_trials("nanmeta"))
    assert len(trials) == 3
    for trial in trials:
        assert trial.status is TrialStatus.FAILED
        assert "not JSON-representable: NaN at 'v'" in trial.status_reason
    # Every job started was asked to stop, by its name.
    started = _named_lines(runner, "job started")
    assert len(started) == 3
    assert _wait_for(lambda: _named_lines(runner, "job stopped") == started)


def test_runner_with_only_run_warns_once_and_clients_complete_its_trials(
    server: Served, runners: Callable[..., Process], caplog: pytest.LogCaptureFixture
) -> None:
    runner = runners("run-only")
    client = server.client
    create_hartmann6(client, "runonly", runner.address)

    with caplog.at_level(logging.WARNING, logger="polytrial.server.orchestration"):
        client.start_orchestration(
            "runonly", max_trials=2, max_parallel_trials=2, poll_interval_s=0.1
        )
        _wait_until(
            client,
            "runonly",
            lambda o: o.trial_counts.get(TrialStatus.RUNNING, 0) == 2,
        )
        time.sleep(1.5)  # a dozen ticks, each refreshing both trials

        # Nothing fails them: data from a client ends them.
        for trial in client.list_trials("runonly"):
            client.complete_trial(trial, 0.5)
        done = client.wait_for_orchestration(
            "runonly", timeout_s=60, poll_interval_s=0.2
        )

    assert done.state is OrchestrationState.COMPLETED
    assert done.trial_counts == {TrialStatus.COMPLETED: 2}
    warnings = [
        r.getMessage() for r in caplog.records if "implements neither" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert runner.address in warnings[0]
    assert "end only when a client completes them" in warnings[0]


def _named_lines(runner: Process, prefix: str) -> list[str]:
    """Sorted job names of the runner's `<prefix> name=...` lines."""
    return sorted(
        line.split("name=")[1].split()[0]
        for line in list(runner.output)
        if line.startswith(prefix)
    )


def _wait_for(probe: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
