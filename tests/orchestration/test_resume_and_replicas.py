"""Orchestrations are stored: a killed server's successor resumes them, and of
several replicas on one PostgreSQL database exactly one drives each."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Process, create_hartmann6, serve_in_process, stop
from polytrial.client import Client, OrchestrationState, TrialStatus

pytestmark = pytest.mark.timeout(120)


def _jobs(runner: Process, experiment_id: str) -> list[str]:
    return [
        line
        for line in list(runner.output)
        if line.startswith(f"job started name={experiment_id}-")
    ]


def test_orchestration_resumes_after_the_server_is_killed_and_restarted(
    servers: Callable[[str], Process],
    runners: Callable[..., Process],
    tmp_path: Path,
) -> None:
    runner = runners("example", job_s=1.0)
    db_url = f"sqlite:///{tmp_path / 'resume.db'}"
    first = servers(db_url)
    with Client(first.address) as client:
        create_hartmann6(client, "resume", runner.address)
        client.start_orchestration(
            "resume", max_trials=6, max_parallel_trials=2, poll_interval_s=0.2
        )
        deadline = time.monotonic() + 60
        while (
            client.get_orchestration("resume").trial_counts.get(TrialStatus.RUNNING, 0)
            < 2
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)

    first.kill()  # SIGKILL, with two trials running on the runner
    second = servers(db_url)
    with Client(second.address) as client:
        done = client.wait_for_orchestration("resume", timeout_s=90)
        trials = list(client.list_trials("resume"))

    assert done.state is OrchestrationState.COMPLETED
    assert done.trials_created == len(trials) == 6
    assert all(t.status is TrialStatus.COMPLETED for t in trials)
    # The restarted server adopted the running jobs instead of redeploying.
    assert len(_jobs(runner, "resume")) == 6
    assert "orchestrator started" in "".join(second.output)


@pytest.mark.postgres
def test_two_replicas_on_postgresql_one_drives_and_the_other_takes_over(
    postgres_url: str, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=0.5)
    replicas = [serve_in_process(postgres_url), serve_in_process(postgres_url)]
    owners = {r.server.orchestrator.owner: r for r in replicas if r.server.orchestrator}
    try:
        first_client = replicas[0].client
        create_hartmann6(first_client, "replicas", runner.address)
        replicas[1].client.start_orchestration(
            "replicas", max_trials=8, max_parallel_trials=2, poll_interval_s=0.1
        )

        # Both replicas see one driver, and it stays the same while it runs.
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        watched_until: float | None = None
        while watched_until is None or time.monotonic() < watched_until:
            for replica in replicas:
                current = replica.client.get_orchestration("replicas")
                if current.driver:
                    seen.add(current.driver)
            if seen and watched_until is None:
                watched_until = time.monotonic() + 1.5  # several ticks
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(seen) == 1
        driver = seen.pop()
        assert driver in owners

        # Stopping the driving replica hands the orchestration over.
        driving = owners.pop(driver)
        replicas.remove(driving)
        stop(driving)
        survivor = replicas[0]
        done = survivor.client.wait_for_orchestration(
            "replicas", timeout_s=60, poll_interval_s=0.2
        )
        trials = list(survivor.client.list_trials("replicas"))
    finally:
        for replica in replicas:
            stop(replica)

    assert done.state is OrchestrationState.COMPLETED
    assert done.trials_created == len(trials) == 8
    assert all(t.status is TrialStatus.COMPLETED for t in trials)
    assert len(_jobs(runner, "replicas")) == 8
