"""Trials through the client: ask/tell, batches, attach, lifecycle, pages, results."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
from polytrial.client import (
    ChoiceParameter,
    Client,
    FailedPreconditionError,
    FixedParameter,
    InvalidArgumentError,
    Observation,
    OrchestrationState,
    RangeParameter,
    TrialStatus,
)

pytestmark = pytest.mark.timeout(60)


def _create(client: Client, experiment_id: str, **kwargs: object) -> None:
    options: dict[str, object] = {
        "parameters": [
            RangeParameter("x", 0.0, 1.0),
            RangeParameter("n", 1, 10),
            ChoiceParameter("act", ["relu", "tanh"]),
            ChoiceParameter("flag", [True, False]),
            FixedParameter("mode", "fast"),
        ],
        "objectives": {"loss": "minimize"},
        "tracking_metrics": ["acc"],
        "generation_strategy": "sobol",
    }
    options.update(kwargs)
    client.create_experiment(experiment_id, **options)  # type: ignore[arg-type]


def test_suggested_parameters_keep_their_types(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    trials = client.suggest_trials(experiment_id, 4)

    assert [t.index for t in trials] == [0, 1, 2, 3]
    for trial in trials:
        assert trial.status is TrialStatus.RUNNING
        assert trial.generation is not None and trial.generation.generator == "sobol"
        parameters = trial.parameters
        assert type(parameters["x"]) is float and 0.0 <= parameters["x"] <= 1.0
        assert type(parameters["n"]) is int and 1 <= parameters["n"] <= 10
        assert parameters["act"] in ("relu", "tanh")
        assert type(parameters["flag"]) is bool
        assert parameters["mode"] == "fast"
        assert trial.arm.name == f"{trial.index}_0"


def test_completion_forms_store_mean_and_sem_as_given(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    plain, pair, zero_sem, by_metric = client.suggest_trials(experiment_id, 4)

    client.complete_trial(plain, 1.5)
    client.complete_trial(pair, (2.5, 0.1))
    client.complete_trial((experiment_id, zero_sem.index), (3.5, 0.0))
    client.complete_trial(by_metric.name, {"loss": (4.5, None), "acc": (0.9, 0.01)})

    def final(index: int) -> set[tuple[str, float, float | None]]:
        trial = client.get_trial((experiment_id, index))
        assert trial.status is TrialStatus.COMPLETED
        return {(o.metric_name, o.mean, o.sem) for o in trial.observations}

    assert final(plain.index) == {("loss", 1.5, None)}
    assert final(pair.index) == {("loss", 2.5, 0.1)}
    assert final(zero_sem.index) == {("loss", 3.5, 0.0)}
    assert final(by_metric.index) == {("loss", 4.5, None), ("acc", 0.9, 0.01)}


def test_a_batch_trial_is_completed_by_arm_name(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    (batch,) = client.suggest_trials(experiment_id, 3, batch=True)
    assert batch.is_batch and len(batch.arms) == 3
    with pytest.raises(ValueError, match="3 arms"):
        client.complete_trial(batch, 1.0)

    completed = client.complete_trial(
        batch, {arm.name: float(position) for position, arm in enumerate(batch.arms)}
    )
    assert completed.status is TrialStatus.COMPLETED
    assert {(o.arm_name, o.mean) for o in completed.observations} == {
        (arm.name, float(position)) for position, arm in enumerate(batch.arms)
    }


def test_attached_replicates_are_pooled_by_the_best_arm(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    chosen: dict[str, bool | int | float | str] = {
        "x": 0.25,
        "n": 3,
        "act": "tanh",
        "flag": False,
    }
    first = client.attach_trial(experiment_id, chosen)
    second = client.attach_trial(experiment_id, chosen)
    client.complete_trial(first, 1.0)
    client.complete_trial(second, 3.0)
    other = client.suggest(experiment_id)
    client.complete_trial(other, 10.0)

    assert first.parameters == {**chosen, "mode": "fast"}
    best = client.get_best_arm(experiment_id)
    assert best.parameters == {**chosen, "mode": "fast"}
    assert sorted(best.trial_indices) == [first.index, second.index]
    assert best.metrics["loss"].mean == pytest.approx(2.0)
    assert best.metrics["loss"].count == 2


def test_a_bad_attach_is_invalid_argument_and_uses_no_index(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    with pytest.raises(InvalidArgumentError, match="'x'"):
        client.attach_trial(
            experiment_id, {"x": 7.0, "n": 3, "act": "tanh", "flag": False}
        )
    assert client.suggest(experiment_id).index == 0


def test_pinned_parameters_hold_in_every_suggestion(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    trials = client.suggest_trials(experiment_id, 3, pinned={"n": 4, "act": "relu"})
    assert all(t.parameters["n"] == 4 and t.parameters["act"] == "relu" for t in trials)
    with pytest.raises(InvalidArgumentError, match="n"):
        client.suggest(experiment_id, pinned={"n": 99})


def test_list_trials_pages_through_everything_and_filters_by_status(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    trials = client.suggest_trials(experiment_id, 5)
    client.complete_trial(trials[1], 1.0)
    client.fail_trial(trials[3], "the GPU fell over")

    assert [t.index for t in client.list_trials(experiment_id, page_size=2)] == [
        0,
        1,
        2,
        3,
        4,
    ]
    completed = list(client.list_trials(experiment_id, statuses=["COMPLETED"]))
    assert [t.index for t in completed] == [1]
    not_running = client.list_trials(
        experiment_id, statuses=[TrialStatus.COMPLETED, TrialStatus.FAILED]
    )
    assert [t.index for t in not_running] == [1, 3]
    with pytest.raises(InvalidArgumentError):
        next(client.list_trials(experiment_id, page_size=-1))


def test_lifecycle_methods_move_trials_and_refuse_illegal_moves(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    failed, abandoned, stopped, renewed = client.suggest_trials(experiment_id, 4)

    assert client.fail_trial(failed, "out of memory").status_reason == "out of memory"
    assert client.abandon_trial(abandoned, "not needed").status is (
        TrialStatus.ABANDONED
    )

    with pytest.raises(FailedPreconditionError):
        client.early_stop_trial(stopped, "no data yet")
    logged = client.log_trial_data(stopped, {"loss": 0.7}, step=3)
    assert logged.observations == (
        Observation(f"{stopped.index}_0", "loss", 0.7, step=3),
    )
    assert client.early_stop_trial(stopped, "plateau").status is (
        TrialStatus.EARLY_STOPPED
    )

    beat = client.heartbeat_trial(renewed, ttl_s=60)
    assert beat.expire_time is not None
    with pytest.raises(FailedPreconditionError):
        client.mark_trial_staged(renewed)
    with pytest.raises(FailedPreconditionError):
        client.fail_trial(failed, "again")


def test_best_arm_before_any_data_is_failed_precondition(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    client.suggest_trials(experiment_id, 2)
    with pytest.raises(FailedPreconditionError, match="loss"):
        client.get_best_arm(experiment_id)


def test_pareto_frontier_of_two_objectives(client: Client, experiment_id: str) -> None:
    client.create_experiment(
        experiment_id,
        parameters=[RangeParameter("x", 0.0, 1.0)],
        objectives={"a": "minimize", "b": "minimize"},
        generation_strategy="sobol",
    )
    trials = client.suggest_trials(experiment_id, 3)
    client.complete_trial(trials[0], {"a": 1.0, "b": 3.0})
    client.complete_trial(trials[1], {"a": 3.0, "b": 1.0})
    client.complete_trial(trials[2], {"a": 4.0, "b": 4.0})  # dominated

    frontier = client.get_pareto_frontier(experiment_id)
    assert sorted(i for arm in frontier for i in arm.trial_indices) == [0, 1]
    with pytest.raises(ValueError, match="exactly one objective"):
        client.complete_trial(client.suggest(experiment_id), 1.0)


def test_a_repeated_request_id_returns_the_first_result(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    first = client.suggest_trials(experiment_id, 2, request_id="ask-1")
    again = client.suggest_trials(experiment_id, 2, request_id="ask-1")
    assert [t.index for t in again] == [t.index for t in first] == [0, 1]
    assert [t.parameters for t in again] == [t.parameters for t in first]

    done = client.complete_trial(first[0], 1.0, request_id="tell-1")
    repeat = client.complete_trial(first[0], 1.0, request_id="tell-1")
    assert repeat.status is TrialStatus.COMPLETED
    assert repeat.observations == done.observations
    assert len(list(client.list_trials(experiment_id))) == 2


def _methods_taking_a_trial(client: Client) -> list[Callable[..., object]]:
    # The annotations are strings (`from __future__ import annotations`).
    methods = [
        getattr(client, name)
        for name, function in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_")
        and function.__annotations__.get("trial") == "TrialRef"
    ]
    assert len(methods) >= 12, methods  # get_trial ... refresh_trial
    return methods


def _call_with_trial(method: Callable[..., object], trial: object) -> object:
    # The methods that report data need a result as well.
    needs_result = "result" in inspect.signature(method).parameters
    return method(trial, 2.0) if needs_result else method(trial)


def test_every_method_taking_a_trial_refuses_a_bare_index_with_a_type_error(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    (trial,) = client.suggest_trials(experiment_id, 1)

    for method in _methods_taking_a_trial(client):
        with pytest.raises(TypeError, match=r"^trial must be a Trial, .*not int 99"):
            _call_with_trial(method, 99)
        with pytest.raises(TypeError, match=r"\(experiment_id, 99\)"):
            _call_with_trial(method, 99)
        with pytest.raises(TypeError, match="a trial index must be an int"):
            _call_with_trial(method, (experiment_id, 0.5))

    # Nothing was sent: the trial is as it was, and the pair form works.
    assert client.get_trial((experiment_id, trial.index)) == trial


def test_statuses_print_as_their_names_in_containers() -> None:
    counts = {TrialStatus.COMPLETED: 12, TrialStatus.FAILED: 1}
    assert str(counts) == "{TrialStatus.COMPLETED: 12, TrialStatus.FAILED: 1}"
    assert repr([OrchestrationState.RUNNING]) == "[OrchestrationState.RUNNING]"
    # str() and f-strings stay the plain value.
    assert f"{TrialStatus.COMPLETED} {OrchestrationState.STOPPED}" == (
        "COMPLETED STOPPED"
    )
