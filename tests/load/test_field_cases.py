"""Field cases c03, c04, c09, c10 and c14 with real client processes.

Each case runs `polytrial serve` as real processes (two replicas sharing one
PostgreSQL schema where the case is about replicas) and real client
processes started together at a gate (see conftest.py).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from polytrial.client import Client

pytestmark = pytest.mark.timeout(240)

Run = Callable[..., list[dict[str, Any]]]
Replicas = Callable[[str, int], list[str]]


def _key(parameters: dict[str, Any]) -> str:
    return json.dumps(parameters, sort_keys=True)


def _float_experiment(client: Client, experiment_id: str) -> None:
    client.create_experiment(
        experiment_id,
        parameters=[
            {"name": "x1", "type": "range", "bounds": [0.0, 1.0]},
            {"name": "x2", "type": "range", "bounds": [0.0, 1.0]},
        ],
        objectives={"loss": "minimize"},
        generation_strategy="sobol",
    )


def _all_trials(client: Client, experiment_id: str) -> list[Any]:
    return list(client.list_trials(experiment_id))


# c03 -----------------------------------------------------------------------


def test_c03_small_categorical_space_never_repeats_an_arm(
    sqlite_url: str, replicas: Replicas, run_clients: Run
) -> None:
    (address,) = replicas(sqlite_url, 1)
    sizes = [3, 4, 5, 6, 8, 9]
    parameters: list[dict[str, Any]] = [
        {"name": f"flag{i}", "type": "choice", "values": [True, False]}
        for i in range(6)
    ] + [
        {
            "name": f"pick{i}",
            "type": "choice",
            "values": [f"v{j}" for j in range(size)],
        }
        for i, size in enumerate(sizes)
    ]
    with Client(address) as client:
        client.create_experiment(
            "small-categorical",
            parameters=parameters,
            objectives={"loss": "minimize"},
            generation_strategy="sobol",
        )
        (batch,) = client.suggest_trials("small-categorical", 16, batch=True)

    # 16 concurrent single-arm suggests: 4 client processes of 4 threads.
    results = run_clients(
        [
            {
                "scenario": "suggest_threads",
                "addresses": [address],
                "experiment": "small-categorical",
                "threads": 4,
            }
            for _ in range(4)
        ]
    )

    batch_keys = [_key(dict(arm.parameters)) for arm in batch.arms]
    single_keys = [_key(arm) for result in results for arm in result["arms"]]
    assert len(batch_keys) == 16 and len(set(batch_keys)) == 16
    assert len(single_keys) == 16 and len(set(single_keys)) == 16
    assert not set(batch_keys) & set(single_keys)


# c04 -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql-2-replicas"])
def test_c04_finite_space_runs_out_after_every_arm_once(
    backend: str, request: pytest.FixtureRequest, replicas: Replicas, run_clients: Run
) -> None:
    if backend == "sqlite":
        addresses = replicas(request.getfixturevalue("sqlite_url"), 1)
    else:
        addresses = replicas(request.getfixturevalue("postgres_url"), 2)
    sizes = [3, 3, 3, 4, 3]
    with Client(addresses[0]) as client:
        client.create_experiment(
            "grid",
            parameters=[
                {"name": f"p{i}", "type": "choice", "values": list(range(size))}
                for i, size in enumerate(sizes)
            ],
            objectives={"loss": "minimize"},
            generation_strategy="sobol",
        )

    results = run_clients(
        [
            {
                "scenario": "until_exhausted",
                "addresses": addresses[i % 2 :] + addresses[: i % 2],
                "experiment": "grid",
            }
            for i in range(8)
        ]
    )

    arms = [_key(arm) for result in results for arm in result["arms"]]
    grid = {
        _key({f"p{i}": v for i, v in enumerate(values)})
        for values in itertools.product(*(range(size) for size in sizes))
    }
    assert len(arms) == 324 and set(arms) == grid
    refusals = [refusal for result in results for refusal in result["refusals"]]
    assert refusals and all(
        code == "FAILED_PRECONDITION"
        and reason == "SEARCH_SPACE_EXHAUSTED"
        and "exhausted" in message
        for code, reason, message in refusals
    )
    with Client(addresses[0]) as client:
        trials = _all_trials(client, "grid")
    assert len(trials) == 324


# c09 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "servers"),
    [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)],
    ids=["sqlite", "postgresql", "postgresql-2-replicas"],
)
def test_c09_trial_indices_stay_unique_and_dense_under_concurrency(
    backend: str,
    servers: int,
    request: pytest.FixtureRequest,
    replicas: Replicas,
    run_clients: Run,
) -> None:
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_url"
    addresses = replicas(request.getfixturevalue(fixture), servers)
    with Client(addresses[0]) as client:
        _float_experiment(client, "dense")

    results = run_clients(
        [
            {
                "scenario": "suggest_many",
                "addresses": addresses[i % servers :] + addresses[: i % servers],
                "experiment": "dense",
                "count": 25,
            }
            for i in range(8)
        ]
    )

    indices = sorted(i for result in results for i in result["indices"])
    assert indices == list(range(200))
    with Client(addresses[-1]) as client:
        stored = [t.index for t in _all_trials(client, "dense")]
    assert stored == list(range(200))


# c10 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "servers"),
    [("sqlite", 1), ("postgresql", 2)],
    ids=["sqlite", "postgresql-2-replicas"],
)
def test_c10_two_completions_of_one_trial_one_wins_and_the_other_is_told(
    backend: str,
    servers: int,
    request: pytest.FixtureRequest,
    replicas: Replicas,
    run_clients: Run,
) -> None:
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_url"
    addresses = replicas(request.getfixturevalue(fixture), servers)
    with Client(addresses[0]) as client:
        _float_experiment(client, "race")
        names = [t.name for t in client.suggest_trials("race", 50)]

    # Worker A sends 1.0 and worker B sends 2.0, each through its own replica.
    values = {0: 1.0, 1: 2.0}
    results = run_clients(
        [
            {
                "scenario": "complete_race",
                "addresses": [addresses[side % servers]],
                "trials": names,
                "value": values[side],
            }
            for side in (0, 1)
        ]
    )

    with Client(addresses[0]) as client:
        for name in names:
            outcomes = [result["outcomes"][name] for result in results]
            assert sorted(outcomes) == ["FAILED_PRECONDITION", "OK"], (name, outcomes)
            winner = outcomes.index("OK")
            stored = client.get_trial(name)
            assert stored.status.name == "COMPLETED"
            means = [o.mean for o in stored.observations]
            assert means == [values[winner]], (name, means)


# c14 -----------------------------------------------------------------------


def test_c14_many_clients_on_the_embedded_database_see_no_error(
    sqlite_url: str, replicas: Replicas, run_clients: Run
) -> None:
    (address,) = replicas(sqlite_url, 1)

    results = run_clients(
        [
            {
                "scenario": "create_and_tell",
                "addresses": [address],
                "experiment": "shared",
                "count": 5,
            }
            for _ in range(32)
        ]
    )

    assert sum(len(result["completed"]) for result in results) == 160
    with Client(address) as client:
        experiments = list(client.list_experiments())
        trials = _all_trials(client, "shared")
    assert [e.experiment_id for e in experiments] == ["shared"]
    assert len(trials) == 160
    assert all(t.status.name == "COMPLETED" for t in trials)
