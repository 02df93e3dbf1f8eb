"""TrialService over a real channel: suggest, attach, data, lifecycle, expiry."""

from __future__ import annotations

import time

import grpc
import pytest
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    Api,
    choice_param,
    error_info,
    experiment,
    float_param,
    int_param,
    obs,
    py_values,
    rpc_error,
    snapshot,
    value,
    values,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
S = tpb.TrialStatus


def test_suggested_trials_are_running_without_a_runner_with_dense_indices(
    any_api: Api,
) -> None:
    any_api.create(experiment("ask"))
    first = any_api.suggest("ask", 3)
    second = any_api.suggest("ask")
    assert [t.index for t in first + second] == [0, 1, 2, 3]
    assert all(t.status == S.TRIAL_STATUS_RUNNING for t in first)
    assert [t.arms[0].arm.name for t in first] == ["0_0", "1_0", "2_0"]
    assert first[0].generation.generator == "sobol"
    assert first[0].run_time.seconds > 0


def test_suggested_trials_are_candidates_when_the_experiment_has_a_runner(
    api: Api,
) -> None:
    api.create(experiment("ran", runner="localhost:1"))
    trial = api.suggest("ran")[0]
    assert trial.status == S.TRIAL_STATUS_CANDIDATE
    assert not trial.HasField("run_time")


def test_batch_suggestion_makes_one_trial_with_distinct_named_arms(api: Api) -> None:
    api.create(experiment("batch"))
    trials = api.suggest("batch", 4, batch=True)
    assert len(trials) == 1 and trials[0].is_batch
    arms = [a.arm for a in trials[0].arms]
    assert [a.name for a in arms] == ["0_0", "0_1", "0_2", "0_3"]
    assert len({tuple(sorted(py_values(a.parameters).items())) for a in arms}) == 4


@pytest.mark.parametrize("count", [-1, 101])
def test_suggest_count_out_of_range_is_invalid_argument(api: Api, count: int) -> None:
    api.create(experiment("cnt"))
    error = rpc_error(INVALID, lambda: api.suggest("cnt", count))
    assert violated_fields(error) == ["count"]
    assert api.all_trials("cnt") == []


def test_suggest_never_repeats_an_arm_of_a_live_trial_in_a_small_space(
    api: Api,
) -> None:
    api.create(experiment("small", [choice_param("c", ["a", "b", "c"])]))
    trials = api.suggest("small", 3)
    assert sorted(py_values(t.arms[0].arm.parameters)["c"] for t in trials) == [
        "a",
        "b",
        "c",
    ]
    before = snapshot(api, "small")
    error = rpc_error(PRECONDITION, lambda: api.suggest("small"))
    assert error_info(error).reason == "SEARCH_SPACE_EXHAUSTED"
    assert snapshot(api, "small") == before
    # A failed trial's arm may be suggested again.
    api.trials.FailTrial(ts.FailTrialRequest(name=trials[1].name, reason="crash"))
    again = api.suggest("small")[0]
    assert py_values(again.arms[0].arm.parameters) == py_values(
        trials[1].arms[0].arm.parameters
    )


def test_attached_trial_keeps_types_and_fills_fixed_parameters(api: Api) -> None:
    api.create(
        experiment(
            "att",
            [
                int_param("n", 1, 10),
                choice_param("c", [True, False]),
                float_param("x", 0, 1),
            ],
        )
    )
    trial = api.attach("att", {"n": 3, "c": False, "x": 0.5})
    assert trial.generation.generator == "manual"
    params = trial.arms[0].arm.parameters
    assert params["n"].WhichOneof("kind") == "int_value"
    assert params["c"].WhichOneof("kind") == "bool_value"
    assert py_values(params) == {"n": 3, "c": False, "x": 0.5}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"x1": 1.5, "x2": 0.5}, "arms[0].parameters.x1"),
        ({"x1": "a", "x2": 0.5}, "arms[0].parameters.x1"),
        ({"x1": 0.5}, "arms[0].parameters.x2"),
        ({"x1": 0.5, "x2": 0.5, "zz": 1.0}, "arms[0].parameters.zz"),
    ],
    ids=["out_of_bounds", "wrong_type", "missing", "unknown"],
)
def test_bad_attach_is_invalid_argument_and_uses_up_no_index(
    api: Api, params: dict[str, object], field: str
) -> None:
    api.create(experiment("att"))
    before = snapshot(api, "att")
    error = rpc_error(INVALID, lambda: api.attach("att", params))
    assert field in violated_fields(error)
    assert snapshot(api, "att") == before
    assert api.attach("att", {"x1": 0.5, "x2": 0.5}).index == 0


def test_attach_with_a_parameter_value_of_no_kind_is_invalid_argument(
    api: Api,
) -> None:
    api.create(experiment("att"))
    request = ts.AttachTrialRequest(parent="experiments/att")
    arm = request.arms.add()
    arm.parameters["x1"].CopyFrom(value(0.5))
    arm.parameters["x2"].Clear()
    error = rpc_error(INVALID, lambda: api.trials.AttachTrial(request))
    assert violated_fields(error) == ["arms[0].parameters.x2"]


def test_attached_batch_trial_has_weighted_arms(api: Api) -> None:
    api.create(experiment("att"))
    trial = api.trials.AttachTrial(
        ts.AttachTrialRequest(
            parent="experiments/att",
            arms=[
                ts.ArmInput(parameters=values({"x1": 0.1, "x2": 0.2}), weight=2.0),
                ts.ArmInput(parameters=values({"x1": 0.3, "x2": 0.4})),
            ],
        )
    )
    assert trial.is_batch
    assert [a.weight for a in trial.arms] == [2.0, 1.0]
    assert [a.arm.name for a in trial.arms] == ["0_0", "0_1"]


def _trial_in(api: Api, status: int) -> tpb.Trial:
    """A fresh trial brought to `status` through legal moves."""
    trial = api.suggest("life")[0]
    name = trial.name
    if status == S.TRIAL_STATUS_STAGED:
        return api.trials.MarkTrialStaged(ts.MarkTrialStagedRequest(name=name))
    if status == S.TRIAL_STATUS_RUNNING:
        return api.trials.MarkTrialRunning(ts.MarkTrialRunningRequest(name=name))
    if status == S.TRIAL_STATUS_COMPLETED:
        api.trials.MarkTrialRunning(ts.MarkTrialRunningRequest(name=name))
        return api.complete(trial, {"loss": 1.0})
    if status == S.TRIAL_STATUS_FAILED:
        return api.trials.FailTrial(ts.FailTrialRequest(name=name, reason="r"))
    if status == S.TRIAL_STATUS_ABANDONED:
        return api.trials.AbandonTrial(ts.AbandonTrialRequest(name=name, reason="r"))
    if status == S.TRIAL_STATUS_EARLY_STOPPED:
        api.trials.MarkTrialRunning(ts.MarkTrialRunningRequest(name=name))
        api.trials.LogTrialData(
            ts.LogTrialDataRequest(
                name=name, observations=[obs(f"{trial.index}_0", "loss", 2.0, step=1)]
            )
        )
        return api.trials.EarlyStopTrial(ts.EarlyStopTrialRequest(name=name))
    return trial


def _move(api: Api, trial: tpb.Trial, target: int) -> tpb.Trial:
    name = trial.name
    if target == S.TRIAL_STATUS_STAGED:
        return api.trials.MarkTrialStaged(ts.MarkTrialStagedRequest(name=name))
    if target == S.TRIAL_STATUS_RUNNING:
        return api.trials.MarkTrialRunning(ts.MarkTrialRunningRequest(name=name))
    if target == S.TRIAL_STATUS_COMPLETED:
        return api.complete(trial, {"loss": 3.0})
    if target == S.TRIAL_STATUS_FAILED:
        return api.trials.FailTrial(ts.FailTrialRequest(name=name, reason="x"))
    if target == S.TRIAL_STATUS_ABANDONED:
        return api.trials.AbandonTrial(ts.AbandonTrialRequest(name=name, reason="x"))
    return api.trials.EarlyStopTrial(ts.EarlyStopTrialRequest(name=name))


LEGAL = {
    S.TRIAL_STATUS_CANDIDATE: {
        S.TRIAL_STATUS_STAGED,
        S.TRIAL_STATUS_RUNNING,
        S.TRIAL_STATUS_FAILED,
        S.TRIAL_STATUS_ABANDONED,
    },
    S.TRIAL_STATUS_STAGED: {
        S.TRIAL_STATUS_RUNNING,
        S.TRIAL_STATUS_FAILED,
        S.TRIAL_STATUS_ABANDONED,
    },
    S.TRIAL_STATUS_RUNNING: {
        S.TRIAL_STATUS_COMPLETED,
        S.TRIAL_STATUS_FAILED,
        S.TRIAL_STATUS_ABANDONED,
    },
}
STATUSES = [v for v in S.values() if v != S.TRIAL_STATUS_UNSPECIFIED]
TARGETS = [v for v in STATUSES if v != S.TRIAL_STATUS_CANDIDATE]


def test_every_lifecycle_move_is_allowed_exactly_as_documented(api: Api) -> None:
    api.create(experiment("life", runner="localhost:1"))
    for source in STATUSES:
        for target in TARGETS:
            trial = _trial_in(api, source)
            assert trial.status == source
            if target in LEGAL.get(source, set()):
                assert _move(api, trial, target).status == target
            else:
                before = api.get_trial("life", trial.index)
                error = rpc_error(
                    PRECONDITION, lambda t=trial, g=target: _move(api, t, g)
                )
                assert error_info(error).metadata["trial"] == trial.name
                assert api.get_trial("life", trial.index) == before


def test_early_stop_needs_data(api: Api) -> None:
    api.create(experiment("es"))
    trial = api.suggest("es")[0]
    error = rpc_error(
        PRECONDITION,
        lambda: api.trials.EarlyStopTrial(ts.EarlyStopTrialRequest(name=trial.name)),
    )
    assert "no data" in error.details()
    assert api.get_trial("es", 0).status == S.TRIAL_STATUS_RUNNING


def test_complete_stores_final_data_and_stamps_end_time(api: Api) -> None:
    api.create(experiment("done", tracking=["acc"]))
    trial = api.suggest("done")[0]
    done = api.trials.CompleteTrial(
        ts.CompleteTrialRequest(
            name=trial.name,
            observations=[obs("0_0", "loss", 1.25, sem=0.1), obs("0_0", "acc", 0.9)],
        )
    )
    assert done.status == S.TRIAL_STATUS_COMPLETED
    assert done.end_time.seconds > 0
    stored = api.get_trial("done", 0)
    by_metric = {o.metric_name: o for o in stored.observations}
    assert by_metric["loss"].mean == 1.25 and by_metric["loss"].sem == 0.1
    assert not by_metric["acc"].HasField("sem")


@pytest.mark.parametrize(
    ("observation", "field"),
    [
        (obs("9_0", "loss", 1.0), "observations[0].arm_name"),
        (obs("0_0", "nope", 1.0), "observations[0].metric_name"),
        (obs("0_0", "loss", float("inf")), "observations[0].mean"),
        (obs("0_0", "loss", 1.0, sem=float("nan")), "observations[0].sem"),
        (obs("0_0", "loss", 1.0, step=-1), "observations[0].step"),
    ],
    ids=["unknown_arm", "unknown_metric", "inf_mean", "nan_sem", "negative_step"],
)
def test_bad_observation_is_invalid_argument_for_complete_and_log(
    api: Api, observation: object, field: str
) -> None:
    api.create(experiment("bad"))
    trial = api.suggest("bad")[0]
    before = snapshot(api, "bad")
    for call in (
        lambda: api.trials.CompleteTrial(
            ts.CompleteTrialRequest(name=trial.name, observations=[observation])
        ),
        lambda: api.trials.LogTrialData(
            ts.LogTrialDataRequest(name=trial.name, observations=[observation])
        ),
    ):
        error = rpc_error(INVALID, call)
        assert field in violated_fields(error)
        assert snapshot(api, "bad") == before


def test_duplicate_observation_in_one_request_is_invalid_argument(api: Api) -> None:
    api.create(experiment("dup"))
    trial = api.suggest("dup")[0]
    error = rpc_error(
        INVALID,
        lambda: api.trials.CompleteTrial(
            ts.CompleteTrialRequest(
                name=trial.name,
                observations=[obs("0_0", "loss", 1.0), obs("0_0", "loss", 2.0)],
            )
        ),
    )
    assert "observations[1]" in violated_fields(error)


def test_logged_intermediate_data_keeps_steps_and_the_trial_running(api: Api) -> None:
    api.create(experiment("curve"))
    trial = api.suggest("curve")[0]
    for step in (1, 2, 3):
        api.trials.LogTrialData(
            ts.LogTrialDataRequest(
                name=trial.name,
                observations=[obs("0_0", "loss", 1.0 / step, step=step)],
            )
        )
    stored = api.get_trial("curve", 0)
    assert stored.status == S.TRIAL_STATUS_RUNNING
    assert [o.step for o in stored.observations] == [1, 2, 3]
    # Intermediate data does not satisfy the completion rule on its own.
    rpc_error(
        INVALID,
        lambda: api.trials.CompleteTrial(ts.CompleteTrialRequest(name=trial.name)),
    )
    # Final data logged earlier (no step) does.
    api.trials.LogTrialData(
        ts.LogTrialDataRequest(name=trial.name, observations=[obs("0_0", "loss", 0.2)])
    )
    done = api.trials.CompleteTrial(ts.CompleteTrialRequest(name=trial.name))
    assert done.status == S.TRIAL_STATUS_COMPLETED


def test_log_data_on_a_completed_trial_is_failed_precondition(api: Api) -> None:
    api.create(experiment("late"))
    trial = api.suggest("late")[0]
    api.complete(trial, {"loss": 1.0})
    before = snapshot(api, "late")
    rpc_error(
        PRECONDITION,
        lambda: api.trials.LogTrialData(
            ts.LogTrialDataRequest(
                name=trial.name, observations=[obs("0_0", "loss", 5.0, step=9)]
            )
        ),
    )
    assert snapshot(api, "late") == before


def test_list_filters_by_status(api: Api) -> None:
    api.create(experiment("flt"))
    trials = api.suggest("flt", 3)
    api.complete(trials[1], {"loss": 1.0})
    page = api.trials.ListTrials(
        ts.ListTrialsRequest(
            parent="experiments/flt", statuses=[S.TRIAL_STATUS_COMPLETED]
        )
    )
    assert [t.index for t in page.trials] == [1]
    any_status = api.trials.ListTrials(
        ts.ListTrialsRequest(
            parent="experiments/flt", statuses=[S.TRIAL_STATUS_UNSPECIFIED]
        )
    )
    assert len(any_status.trials) == 3
    rpc_error(
        INVALID,
        lambda: api.trials.ListTrials(
            ts.ListTrialsRequest(parent="experiments/flt", statuses=[99])
        ),
    )


def test_running_trial_past_its_ttl_is_failed_as_lost_and_heartbeats_renew(
    api: Api,
) -> None:
    api.create(experiment("ttl"))
    kept, lost = api.suggest("ttl", 2, ttl_s=0.6)
    assert kept.HasField("expire_time")
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        api.trials.HeartbeatTrial(ts.HeartbeatTrialRequest(name=kept.name))
        time.sleep(0.1)
    assert api.get_trial("ttl", kept.index).status == S.TRIAL_STATUS_RUNNING
    gone = api.get_trial("ttl", lost.index)
    assert gone.status == S.TRIAL_STATUS_FAILED
    assert gone.status_reason.startswith("lost")
    error = rpc_error(PRECONDITION, lambda: api.complete(lost, {"loss": 1.0}))
    assert "FAILED" in error.details()


def test_negative_ttl_is_invalid_argument(api: Api) -> None:
    api.create(experiment("ttl"))
    error = rpc_error(INVALID, lambda: api.suggest("ttl", ttl_s=-1.0))
    assert violated_fields(error) == ["ttl_s"]


def test_repeated_request_ids_return_the_first_result(api: Api) -> None:
    api.create(experiment("idem"))
    first = api.suggest("idem", 2, request_id="s-1")
    again = api.suggest("idem", 2, request_id="s-1")
    assert [t.index for t in again] == [t.index for t in first] == [0, 1]
    attached = api.attach("idem", {"x1": 0.1, "x2": 0.2}, request_id="a-1")
    assert api.attach("idem", {"x1": 0.1, "x2": 0.2}, request_id="a-1") == attached
    assert api.complete(first[0], {"loss": 1.0}, request_id="c-1").status == (
        S.TRIAL_STATUS_COMPLETED
    )
    repeat = api.complete(first[0], {"loss": 1.0}, request_id="c-1")
    assert [o.mean for o in repeat.observations] == [1.0]
    # The same id with a different value is a different request, refused.
    rpc_error(INVALID, lambda: api.complete(first[0], {"loss": 9.0}, request_id="c-1"))
    assert len(api.all_trials("idem")) == 3


def test_malformed_trial_name_is_invalid_argument(api: Api) -> None:
    error = rpc_error(
        INVALID,
        lambda: api.trials.GetTrial(ts.GetTrialRequest(name="experiments/a/trials/x")),
    )
    assert violated_fields(error) == ["name"]
