"""Helpers shared by the server, storage and case tests: stubs and builders.

Tests talk to real servers over real channels with the generated stubs; these
helpers only build messages and read status details.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from polytrial.v1 import (
    experiment_pb2 as epb,
)
from polytrial.v1 import (
    experiment_service_pb2 as es,
)
from polytrial.v1 import (
    experiment_service_pb2_grpc as esg,
)
from polytrial.v1 import (
    result_service_pb2 as rs,
)
from polytrial.v1 import (
    result_service_pb2_grpc as rsg,
)
from polytrial.v1 import (
    trial_pb2 as tpb,
)
from polytrial.v1 import (
    trial_service_pb2 as ts,
)
from polytrial.v1 import (
    trial_service_pb2_grpc as tsg,
)
from polytrial.v1 import (
    values_pb2 as vpb,
)

RPC_TIMEOUT_S = 30.0


@dataclass
class Api:
    """Stubs of the three services over one channel."""

    channel: grpc.Channel
    experiments: esg.ExperimentServiceStub
    trials: tsg.TrialServiceStub
    results: rsg.ResultServiceStub

    def close(self) -> None:
        self.channel.close()

    # Short forms of the calls tests make most.

    def create(self, experiment: epb.Experiment) -> epb.Experiment:
        return self.experiments.CreateExperiment(
            es.CreateExperimentRequest(experiment=experiment), timeout=RPC_TIMEOUT_S
        )

    def get_experiment(self, experiment_id: str) -> epb.Experiment:
        return self.experiments.GetExperiment(
            es.GetExperimentRequest(name=f"experiments/{experiment_id}"),
            timeout=RPC_TIMEOUT_S,
        )

    def suggest(self, experiment_id: str, count: int = 1, **kw: Any) -> list[tpb.Trial]:
        response = self.trials.SuggestTrials(
            ts.SuggestTrialsRequest(
                parent=f"experiments/{experiment_id}", count=count, **kw
            ),
            timeout=RPC_TIMEOUT_S,
        )
        return list(response.trials)

    def attach(
        self, experiment_id: str, *params: dict[str, Any], **kw: Any
    ) -> tpb.Trial:
        return self.trials.AttachTrial(
            ts.AttachTrialRequest(
                parent=f"experiments/{experiment_id}",
                arms=[ts.ArmInput(parameters=values(p)) for p in params],
                **kw,
            ),
            timeout=RPC_TIMEOUT_S,
        )

    def complete(
        self, trial: tpb.Trial | str, metrics: dict[str, float], **kw: Any
    ) -> tpb.Trial:
        """Completes a single-arm trial with one mean per metric."""
        name = trial if isinstance(trial, str) else trial.name
        arm_name = f"{name.rsplit('/', 1)[1]}_0"
        return self.trials.CompleteTrial(
            ts.CompleteTrialRequest(
                name=name,
                observations=[obs(arm_name, m, v) for m, v in metrics.items()],
                **kw,
            ),
            timeout=RPC_TIMEOUT_S,
        )

    def get_trial(self, experiment_id: str, index: int) -> tpb.Trial:
        return self.trials.GetTrial(
            ts.GetTrialRequest(name=f"experiments/{experiment_id}/trials/{index}"),
            timeout=RPC_TIMEOUT_S,
        )

    def all_trials(self, experiment_id: str) -> list[tpb.Trial]:
        """Every trial, following page tokens."""
        found: list[tpb.Trial] = []
        token = ""
        while True:
            page = self.trials.ListTrials(
                ts.ListTrialsRequest(
                    parent=f"experiments/{experiment_id}", page_token=token
                ),
                timeout=RPC_TIMEOUT_S,
            )
            found.extend(page.trials)
            token = page.next_page_token
            if not token:
                return found

    def best_arm(self, experiment_id: str) -> rs.ArmResult:
        return self.results.GetBestArm(
            rs.GetBestArmRequest(parent=f"experiments/{experiment_id}"),
            timeout=RPC_TIMEOUT_S,
        ).best


def connect(port: int) -> Api:
    """Opens a channel to a server on localhost and waits until it is ready."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT_S)
    return Api(
        channel,
        esg.ExperimentServiceStub(channel),
        tsg.TrialServiceStub(channel),
        rsg.ResultServiceStub(channel),
    )


# Builders ------------------------------------------------------------------


def value(v: bool | int | float | str) -> vpb.ParameterValue:
    if isinstance(v, bool):
        return vpb.ParameterValue(bool_value=v)
    if isinstance(v, int):
        return vpb.ParameterValue(int_value=v)
    if isinstance(v, float):
        return vpb.ParameterValue(float_value=v)
    return vpb.ParameterValue(string_value=v)


def values(params: dict[str, Any]) -> dict[str, vpb.ParameterValue]:
    return {name: value(v) for name, v in params.items()}


def py_values(parameters: Any) -> dict[str, Any]:
    """Typed Python values of a `map<string, ParameterValue>`."""
    return {name: getattr(v, v.WhichOneof("kind")) for name, v in parameters.items()}


def float_param(name: str, lower: float, upper: float, **kw: Any) -> epb.Parameter:
    return epb.Parameter(
        name=name,
        range=epb.RangeParameter(
            type=epb.PARAMETER_TYPE_FLOAT, lower=lower, upper=upper, **kw
        ),
    )


def int_param(name: str, lower: float, upper: float, **kw: Any) -> epb.Parameter:
    return epb.Parameter(
        name=name,
        range=epb.RangeParameter(
            type=epb.PARAMETER_TYPE_INT, lower=lower, upper=upper, **kw
        ),
    )


def choice_param(
    name: str, choices: Iterable[Any], *, ordered: bool = False
) -> epb.Parameter:
    return epb.Parameter(
        name=name,
        choice=epb.ChoiceParameter(
            values=[value(c) for c in choices], is_ordered=ordered
        ),
    )


def fixed_param(name: str, v: Any) -> epb.Parameter:
    return epb.Parameter(name=name, fixed=epb.FixedParameter(value=value(v)))


def experiment(
    experiment_id: str,
    parameters: Iterable[epb.Parameter] | None = None,
    *,
    objectives: Iterable[tuple[str, bool]] = (("loss", True),),
    tracking: Iterable[str] = (),
    outcome_constraints: Iterable[epb.OutcomeConstraint] = (),
    constraints: Iterable[epb.ParameterConstraint] = (),
    runner: str = "",
    kind: int = epb.GENERATOR_KIND_SOBOL,
    seed: int | None = 7,
) -> epb.Experiment:
    """An experiment message; Sobol only unless `kind` says otherwise."""
    if parameters is None:
        parameters = [float_param("x1", 0.0, 1.0), float_param("x2", 0.0, 1.0)]
    message = epb.Experiment(
        experiment_id=experiment_id,
        search_space=epb.SearchSpace(
            parameters=list(parameters), parameter_constraints=list(constraints)
        ),
        optimization_config=epb.OptimizationConfig(
            objectives=[
                epb.Objective(metric_name=m, minimize=minimize)
                for m, minimize in objectives
            ],
            outcome_constraints=list(outcome_constraints),
            tracking_metrics=list(tracking),
        ),
        generation_strategy=epb.GenerationStrategy(kind=kind),
    )
    if seed is not None:
        message.generation_strategy.seed = seed
    if runner:
        message.runner.address = runner
    return message


def obs(
    arm_name: str,
    metric_name: str,
    mean: float,
    sem: float | None = None,
    step: int | None = None,
) -> vpb.Observation:
    message = vpb.Observation(arm_name=arm_name, metric_name=metric_name, mean=mean)
    if sem is not None:
        message.sem = sem
    if step is not None:
        message.step = step
    return message


# Errors ----------------------------------------------------------------------


def rpc_error(code: grpc.StatusCode, call: Callable[[], Any]) -> grpc.RpcError:
    """Runs `call`, asserts it fails with `code`, and returns the error."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert error.code() == code, f"{error.code()}: {error.details()}"
    return error


def status_of(error: grpc.RpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status details"
    return status


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    for detail in status_of(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo detail")


def violated_fields(error: grpc.RpcError) -> list[str]:
    """The field paths of the BadRequest detail of an INVALID_ARGUMENT error."""
    for detail in status_of(error).details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    raise AssertionError("no BadRequest detail")


def snapshot(api: Api, experiment_id: str) -> tuple[Any, ...]:
    """The experiment and its trials, for 'nothing changed' assertions."""
    exp = api.get_experiment(experiment_id)
    exp.ClearField("update_time")
    return exp.SerializeToString(deterministic=True), [
        t.SerializeToString(deterministic=True) for t in api.all_trials(experiment_id)
    ]


def experiment_ids(api: Api) -> list[str]:
    found: list[str] = []
    token = ""
    while True:
        page = api.experiments.ListExperiments(
            es.ListExperimentsRequest(page_token=token), timeout=RPC_TIMEOUT_S
        )
        found.extend(e.experiment_id for e in page.experiments)
        token = page.next_page_token
        if not token:
            return found


def is_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
