"""Bounded loopback load: 16 client processes asking and telling across replicas.

Half the clients share one experiment and half have one each. The run lasts
POLYTRIAL_LOAD_SECONDS (10 in CI; `make load-test` runs 60). At the end
every acknowledged completion is stored exactly once with its value, every
trial is completed (none was handed out twice or left behind by a retry),
indices are dense, and no client saw an error it did not cause.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from polytrial.client import Client

Run = Callable[..., list[dict[str, Any]]]
Replicas = Callable[[str, int], list[str]]

LOAD_SECONDS = float(os.environ.get("POLYTRIAL_LOAD_SECONDS", "10"))
CLIENTS = 16

pytestmark = pytest.mark.timeout(int(LOAD_SECONDS) + 240)


def _create(address: str, experiment_ids: list[str]) -> None:
    with Client(address) as client:
        for experiment_id in experiment_ids:
            client.create_experiment(
                experiment_id,
                parameters=[
                    {"name": "x1", "type": "range", "bounds": [0.0, 1.0]},
                    {"name": "x2", "type": "range", "bounds": [0.0, 1.0]},
                ],
                objectives={"loss": "minimize"},
                generation_strategy="sobol",
            )


def _jobs(addresses: list[str], seconds: float) -> list[dict[str, Any]]:
    return [
        {
            "scenario": "ask_tell_for",
            "addresses": addresses,
            "balanced": True,
            "experiment": "shared" if i % 2 == 0 else f"solo-{i}",
            "seconds": seconds,
            "ttl_s": 600.0,
        }
        for i in range(CLIENTS)
    ]


def _check_exactly_once(address: str, results: list[dict[str, Any]]) -> int:
    acknowledged = [tuple(a) for result in results for a in result["acknowledged"]]
    keys = [(experiment_id, index) for experiment_id, index, _ in acknowledged]
    assert len(keys) == len(set(keys)), "one trial was acknowledged twice"
    wanted = {(e, i): value for e, i, value in acknowledged}
    with Client(address) as client:
        for experiment_id in sorted({e for e, _ in keys}):
            trials = list(client.list_trials(experiment_id))
            assert [t.index for t in trials] == list(range(len(trials)))
            for trial in trials:
                assert trial.status.name == "COMPLETED", trial.name
                means = [o.mean for o in trial.observations]
                assert means == [wanted[(experiment_id, trial.index)]], trial.name
            stored = {(experiment_id, t.index) for t in trials}
            assert stored == {k for k in keys if k[0] == experiment_id}
    return len(acknowledged)


def test_sixteen_clients_across_two_replicas_store_every_completion_once(
    postgres_url: str, replicas: Replicas, run_clients: Run
) -> None:
    addresses = replicas(postgres_url, 2)
    experiment_ids = ["shared", *(f"solo-{i}" for i in range(1, CLIENTS, 2))]
    _create(addresses[0], experiment_ids)

    results = run_clients(_jobs(addresses, LOAD_SECONDS))

    stored = _check_exactly_once(addresses[1], results)
    assert stored > CLIENTS
    print(f"{stored} completions in {LOAD_SECONDS:g} s, each stored exactly once")


def test_killing_a_replica_under_load_loses_and_duplicates_nothing(
    postgres_url: str,
    serve_process: Callable[..., Any],
    run_clients: Run,
) -> None:
    servers = [serve_process(postgres_url) for _ in range(2)]
    addresses = [f"127.0.0.1:{server.port}" for server in servers]
    experiment_ids = ["shared", *(f"solo-{i}" for i in range(1, CLIENTS, 2))]
    _create(addresses[0], experiment_ids)

    # SIGKILL one replica a few seconds into the run; its calls in flight
    # are retried by the clients, with their request ids, on the other.
    seconds = max(6.0, LOAD_SECONDS / 2)
    killer = threading.Timer(seconds / 2, servers[0].kill)
    try:
        results = run_clients(_jobs(addresses, seconds), on_start=killer.start)
    finally:
        killer.cancel()
    assert servers[0].process.poll() is not None, "the replica was never killed"

    stored = _check_exactly_once(addresses[1], results)
    assert stored > CLIENTS
    print(f"{stored} completions in {seconds:g} s with a replica killed")
