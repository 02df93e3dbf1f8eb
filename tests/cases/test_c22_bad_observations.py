"""c22: observations that are not numbers are refused and store nothing."""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, experiment, obs, rpc_error, snapshot, violated_fields

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("observation", "field"),
    [
        (obs("0_0", "loss", float("nan")), "observations[0].mean"),
        (obs("0_0", "loss", float("inf")), "observations[0].mean"),
        (obs("0_0", "loss", 1.0, sem=-1.0), "observations[0].sem"),
    ],
    ids=["nan_mean", "inf_mean", "negative_sem"],
)
def test_non_number_observation_is_invalid_argument_naming_arm_and_metric(
    any_api: Api, observation: object, field: str
) -> None:
    api = any_api
    api.create(experiment("c22"))
    trial = api.suggest("c22")[0]
    before = snapshot(api, "c22")
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: api.trials.CompleteTrial(
            ts.CompleteTrialRequest(name=trial.name, observations=[observation])
        ),
    )
    assert violated_fields(error) == [field]
    assert "'0_0'" in error.details() and "'loss'" in error.details()
    assert snapshot(api, "c22") == before
    assert api.get_trial("c22", 0).status == tpb.TRIAL_STATUS_RUNNING


def test_mean_sent_as_a_string_is_invalid_argument_not_zero(api: Api) -> None:
    api.create(experiment("c22"))
    trial = api.suggest("c22")[0]
    before = snapshot(api, "c22")
    # A client that encodes the mean as the string "3.0": field 3 arrives
    # length-delimited instead of as a double. Typed stubs cannot even build
    # such a message, so the bytes are written by hand.
    observation = obs("0_0", "loss", 0.0).SerializeToString() + b"\x1a\x033.0"
    request = ts.CompleteTrialRequest(name=trial.name).SerializeToString()
    request += b"\x12" + bytes([len(observation)]) + observation
    call = api.channel.unary_unary(
        "/polytrial.v1.TrialService/CompleteTrial",
        request_serializer=lambda raw: raw,
        response_deserializer=tpb.Trial.FromString,
    )
    error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: call(request))
    assert violated_fields(error) == ["observations[0].mean"]
    assert "'0_0'" in error.details() and "'loss'" in error.details()
    assert snapshot(api, "c22") == before
    with pytest.raises(TypeError):
        ts.CompleteTrialRequest(name=trial.name, observations=[{"mean": "3.0"}])
