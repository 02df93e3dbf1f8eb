"""The synchronous loop: evaluate, tell, fail what raises, and report the best."""

from __future__ import annotations

import math

import pytest
from polytrial.client import (
    ChoiceParameter,
    Client,
    InvalidArgumentError,
    Parameters,
    RangeParameter,
    TrialOutcome,
    TrialStatus,
    optimize,
)

pytestmark = pytest.mark.timeout(120)


def _create(client: Client, experiment_id: str, **kwargs: object) -> None:
    options: dict[str, object] = {
        "parameters": [RangeParameter("x", -2.0, 2.0), RangeParameter("y", -2.0, 2.0)],
        "objectives": {"loss": "minimize"},
        "generation_strategy": "sobol",
    }
    options.update(kwargs)
    client.create_experiment(experiment_id, **options)  # type: ignore[arg-type]


def _quadratic(parameters: Parameters) -> float:
    x, y = float(parameters["x"]), float(parameters["y"])
    return (x - 0.5) ** 2 + (y + 0.25) ** 2


def test_optimize_runs_every_trial_and_reports_the_best(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    seen: list[TrialOutcome] = []
    summary = client.optimize(
        experiment_id, _quadratic, num_trials=8, on_trial=seen.append
    )

    assert [o.position for o in seen] == list(range(1, 9))
    assert list(summary.trials) == seen
    assert summary.num_completed == 8 and summary.num_failed == 0
    values = [o.objective_value for o in seen]
    assert all(v is not None for v in values)
    assert [o.best_value for o in seen] == [
        min(v for v in values[: n + 1] if v is not None) for n in range(8)
    ]
    assert summary.best is not None
    assert summary.best.metrics["loss"].mean == min(v for v in values if v is not None)
    assert summary.best.metrics["loss"].mean == pytest.approx(
        _quadratic(summary.best.parameters)
    )
    stored = list(client.list_trials(experiment_id, statuses=["COMPLETED"]))
    assert len(stored) == 8


def test_a_raising_evaluation_fails_only_its_trial_with_the_message(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    calls = 0

    def flaky(parameters: Parameters) -> float:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            raise RuntimeError(f"simulator crashed on call {calls}")
        return _quadratic(parameters)

    summary = optimize(client, experiment_id, flaky, num_trials=6)

    assert summary.num_completed == 4 and summary.num_failed == 2
    failed = list(client.list_trials(experiment_id, statuses=[TrialStatus.FAILED]))
    assert [t.status_reason for t in failed] == [
        "RuntimeError: simulator crashed on call 3",
        "RuntimeError: simulator crashed on call 6",
    ]
    assert all(not t.observations for t in failed)
    assert not list(client.list_trials(experiment_id, statuses=["RUNNING"]))


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        ((1.0, -1.0), "standard error -1.0"),
        (None, "None"),
        ("3.0", "not a number"),
    ],
)
def test_an_evaluation_without_a_usable_number_fails_its_trial(
    client: Client, experiment_id: str, returned: object, reason: str
) -> None:
    _create(client, experiment_id)
    summary = client.optimize(experiment_id, lambda _p: returned, num_trials=1)

    (outcome,) = summary.trials
    assert outcome.status is TrialStatus.FAILED
    assert reason in outcome.reason
    stored = client.get_trial((experiment_id, outcome.index))
    assert stored.status is TrialStatus.FAILED and not stored.observations
    assert summary.best is None


def test_dict_results_report_tracking_metrics_too(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id, tracking_metrics=["norm"])
    summary = client.optimize(
        experiment_id,
        lambda p: {"loss": (_quadratic(p), 0.0), "norm": abs(float(p["x"]))},
        num_trials=3,
    )
    for outcome in summary.trials:
        assert set(outcome.values) == {"loss", "norm"}
        assert outcome.values["loss"][1] == 0.0
        assert outcome.values["norm"][1] is None


def test_a_result_the_server_refuses_fails_the_trial_and_stops_the_loop(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    with pytest.raises(InvalidArgumentError, match="unknown_metric"):
        client.optimize(
            experiment_id, lambda p: {"loss": 1.0, "unknown_metric": 2.0}, num_trials=5
        )
    (trial,) = client.list_trials(experiment_id)
    assert trial.status is TrialStatus.FAILED
    assert "unknown_metric" in trial.status_reason


def test_an_exhausted_space_stops_the_loop_early_with_the_reason(
    client: Client, experiment_id: str
) -> None:
    _create(
        client,
        experiment_id,
        parameters=[ChoiceParameter("c", ["a", "b", "c"])],
    )
    summary = client.optimize(experiment_id, lambda p: 1.0, num_trials=10)
    assert len(summary.trials) == 3
    assert "exhausted" in summary.stopped_reason.lower()


def test_optimize_opens_its_own_client_from_an_address(
    server_address: str, client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    summary = optimize(server_address, experiment_id, _quadratic, num_trials=2)
    assert summary.num_completed == 2
