"""Service limits: each refused with a clear error, and nothing stored."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from polytrial.server.app import MAX_MESSAGE_BYTES
from polytrial.server.engine.parsing import MAX_CHOICE_VALUES
from polytrial.server.service.config import MAX_CONFIG_BYTES, MAX_PARAMETERS
from polytrial.server.service.experiments import (
    MAX_DESCRIPTION_CHARS,
    MAX_PROPERTIES_BYTES,
    MAX_PROPERTIES_DEPTH,
)
from polytrial.server.service.paging import PAGE_BUDGET_BYTES
from polytrial.server.service.trials import (
    MAX_ARMS_PER_TRIAL,
    MAX_PAGE_SIZE,
    MAX_REQUEST_ID_LENGTH,
    MAX_SUGGEST_COUNT,
)
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    choice_param,
    error_info,
    experiment,
    experiment_ids,
    float_param,
    rpc_error,
    snapshot,
    violated_fields,
)

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_suggesting_more_trials_than_the_limit_is_invalid_argument(api: Api) -> None:
    api.create(experiment("lim"))
    before = snapshot(api, "lim")

    error = rpc_error(INVALID, lambda: api.suggest("lim", MAX_SUGGEST_COUNT + 1))

    assert violated_fields(error) == ["count"]
    assert str(MAX_SUGGEST_COUNT) in error.details()
    assert snapshot(api, "lim") == before


def test_batch_of_more_arms_than_the_limit_is_invalid_argument(api: Api) -> None:
    api.create(experiment("lim"))
    before = snapshot(api, "lim")
    arms = [{"x1": i / 1000, "x2": 0.5} for i in range(MAX_ARMS_PER_TRIAL + 1)]

    error = rpc_error(INVALID, lambda: api.attach("lim", *arms))
    batch = rpc_error(
        INVALID,
        lambda: api.suggest("lim", MAX_ARMS_PER_TRIAL + 1, batch=True),
    )

    assert violated_fields(error) == ["arms"]
    assert error_info(error).reason == "LIMIT_EXCEEDED"
    assert violated_fields(batch) == ["count"]
    assert snapshot(api, "lim") == before


def test_experiment_with_more_parameters_than_the_limit_is_invalid_argument(
    api: Api,
) -> None:
    parameters = [float_param(f"x{i}", 0.0, 1.0) for i in range(MAX_PARAMETERS + 1)]

    error = rpc_error(INVALID, lambda: api.create(experiment("wide", parameters)))

    assert violated_fields(error) == ["experiment.search_space.parameters"]
    assert str(MAX_PARAMETERS) in error.details()
    assert experiment_ids(api) == []


def test_experiment_with_exactly_the_parameter_limit_is_accepted(api: Api) -> None:
    parameters = [float_param(f"x{i}", 0.0, 1.0) for i in range(MAX_PARAMETERS)]
    api.create(experiment("wide", parameters))
    (trial,) = api.suggest("wide")
    assert len(trial.arms[0].arm.parameters) == MAX_PARAMETERS


def test_page_size_above_the_maximum_returns_the_maximum(api: Api) -> None:
    api.create(experiment("pages"))
    for _ in range(MAX_PAGE_SIZE // MAX_SUGGEST_COUNT + 1):
        api.suggest("pages", MAX_SUGGEST_COUNT)

    page = api.trials.ListTrials(
        ts.ListTrialsRequest(parent="experiments/pages", page_size=10 * MAX_PAGE_SIZE),
        timeout=60,
    )

    assert len(page.trials) == MAX_PAGE_SIZE
    assert page.next_page_token


def test_request_larger_than_the_message_limit_is_resource_exhausted(
    api: Api,
) -> None:
    message = experiment("big")
    message.description = "x" * (MAX_MESSAGE_BYTES + 1)

    error = rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        lambda: api.experiments.CreateExperiment(
            es.CreateExperimentRequest(experiment=message), timeout=60
        ),
    )

    assert "larger than max" in (error.details() or "").lower()
    assert experiment_ids(api) == []


def test_request_id_longer_than_the_limit_is_invalid_argument(any_api: Api) -> None:
    any_api.create(experiment("lim"))
    before = snapshot(any_api, "lim")
    long_id = "r" * (MAX_REQUEST_ID_LENGTH + 1)

    error = rpc_error(INVALID, lambda: any_api.suggest("lim", request_id=long_id))

    assert violated_fields(error) == ["request_id"]
    assert snapshot(any_api, "lim") == before
    # The longest allowed id works on every backend.
    any_api.suggest("lim", request_id="r" * MAX_REQUEST_ID_LENGTH)


def _properties_of(size: int) -> struct_pb2.Struct:
    """`{"k": "vvv..."}` of exactly `size` bytes serialized."""
    properties = struct_pb2.Struct()
    length = size
    while True:
        properties["k"] = "v" * length
        if properties.ByteSize() == size:
            return properties
        length += size - properties.ByteSize()


def _config_bytes(message: epb.Experiment) -> int:
    """The configuration's serialized size, measured as the server does."""
    parts = (
        message.search_space,
        message.optimization_config,
        message.generation_strategy,
        message.status_quo,
        message.runner,
        *message.metric_sources,
    )
    return sum(part.ByteSize() for part in parts)


def _experiment_with_config_of(experiment_id: str, size: int) -> epb.Experiment:
    """An experiment of string choice parameters whose configuration is exactly
    `size` bytes serialized."""
    message = experiment(experiment_id, [choice_param("c0", ["x"])])
    # A 100-character value adds 104 bytes (tag, lengths, oneof tag).
    count = (size - _config_bytes(message)) // 104
    names = [f"{j:0100d}" for j in range(count)]
    message.search_space.ClearField("parameters")
    message.search_space.parameters.extend(
        choice_param(f"c{i}", names[start : start + MAX_CHOICE_VALUES])
        for i, start in enumerate(range(0, count, MAX_CHOICE_VALUES))
    )
    # The parameters' headers are a little larger than c0's: make up the
    # difference one character, that is one byte, per value.
    missing = size - _config_bytes(message)
    values = (v for p in message.search_space.parameters for v in p.choice.values)
    for value_pb, _ in zip(values, range(abs(missing)), strict=False):
        text = value_pb.string_value
        value_pb.string_value = "p" + text if missing > 0 else text[1:]
    assert _config_bytes(message) == size
    return message


def _update(api: Api, change: epb.Experiment, *paths: str) -> epb.Experiment:
    return api.experiments.UpdateExperiment(
        es.UpdateExperimentRequest(
            experiment=change, update_mask=field_mask_pb2.FieldMask(paths=paths)
        ),
        timeout=RPC_TIMEOUT_S,
    )


def test_properties_past_the_limit_are_limit_exceeded_and_nothing_is_stored(
    api: Api,
) -> None:
    # The tester's request: stored before, and then unreadable by any client.
    huge = experiment("props")
    huge.properties["k"] = "v" * 4_190_000
    just_over = experiment("props")
    just_over.properties.CopyFrom(_properties_of(MAX_PROPERTIES_BYTES + 1))

    for message in (huge, just_over):
        error = rpc_error(INVALID, lambda message=message: api.create(message))
        assert violated_fields(error) == ["experiment.properties"]
        assert error_info(error).reason == "LIMIT_EXCEEDED"
        assert f"{MAX_PROPERTIES_BYTES:,}" in error.details()
    assert experiment_ids(api) == []

    at_limit = experiment("props")
    at_limit.properties.CopyFrom(_properties_of(MAX_PROPERTIES_BYTES))
    assert api.create(at_limit).properties == at_limit.properties


@pytest.mark.parametrize("paths", [["properties"], []])
def test_update_with_properties_past_the_limit_is_limit_exceeded_and_changes_nothing(
    api: Api, paths: list[str]
) -> None:
    message = experiment("upd")
    message.properties["team"] = "search"
    api.create(message)
    before = snapshot(api, "upd")
    change = epb.Experiment(name="experiments/upd")
    change.properties.CopyFrom(_properties_of(MAX_PROPERTIES_BYTES + 1))

    error = rpc_error(INVALID, lambda: _update(api, change, *paths))

    assert violated_fields(error) == ["experiment.properties"]
    assert error_info(error).reason == "LIMIT_EXCEEDED"
    assert snapshot(api, "upd") == before
    # Properties the mask leaves out are not read, whatever their size.
    change.description = "new"
    assert _update(api, change, "description").properties["team"] == "search"


def _properties_nested(levels: int) -> struct_pb2.Struct:
    """`{"k": {"k": ... {}}}`, `levels` objects deep counting the Struct itself."""
    properties = struct_pb2.Struct()
    inner = properties
    for _ in range(levels - 1):
        inner = inner.get_or_create_struct("k")
    return properties


def test_properties_nested_past_the_limit_are_limit_exceeded_naming_the_path(
    api: Api,
) -> None:
    # One level past the limit still parses, so the service must refuse it.
    too_deep = experiment("deep")
    too_deep.properties.CopyFrom(_properties_nested(MAX_PROPERTIES_DEPTH + 1))

    error = rpc_error(INVALID, lambda: api.create(too_deep))

    path = "experiment.properties" + ".k" * MAX_PROPERTIES_DEPTH
    assert violated_fields(error) == [path]
    assert error_info(error).reason == "LIMIT_EXCEEDED"
    assert f"more than {MAX_PROPERTIES_DEPTH} levels" in error.details()
    assert experiment_ids(api) == []

    at_limit = experiment("deep")
    at_limit.properties.CopyFrom(_properties_nested(MAX_PROPERTIES_DEPTH))
    assert api.create(at_limit).properties == at_limit.properties
    change = epb.Experiment(name="experiments/deep")
    change.properties.CopyFrom(_properties_nested(MAX_PROPERTIES_DEPTH + 1))
    error = rpc_error(INVALID, lambda: _update(api, change, "properties"))
    assert violated_fields(error) == [path]


def test_configuration_past_the_limit_is_limit_exceeded_naming_its_largest_part(
    api: Api,
) -> None:
    message = _experiment_with_config_of("wide", MAX_CONFIG_BYTES + 1)

    error = rpc_error(INVALID, lambda: api.create(message))

    assert violated_fields(error) == ["experiment.search_space"]
    assert error_info(error).reason == "LIMIT_EXCEEDED"
    assert f"{MAX_CONFIG_BYTES:,}" in error.details()
    assert experiment_ids(api) == []


def test_experiment_at_every_size_limit_fits_one_list_page(api: Api) -> None:
    # The largest experiment the limits allow: configuration, description (in
    # 4-byte characters) and properties each at its limit.
    for experiment_id in ("big1", "big2"):
        message = _experiment_with_config_of(experiment_id, MAX_CONFIG_BYTES)
        message.description = "\U0001f600" * MAX_DESCRIPTION_CHARS
        message.properties.CopyFrom(_properties_of(MAX_PROPERTIES_BYTES))
        created = api.create(message)
        assert created.ByteSize() <= PAGE_BUDGET_BYTES

    # Two do not fit one page, so each comes on its own, within the 4 MiB
    # this test's channel accepts, like a Go or TypeScript client's.
    pages = []
    token = ""
    while True:
        page = api.experiments.ListExperiments(
            es.ListExperimentsRequest(page_token=token), timeout=RPC_TIMEOUT_S
        )
        pages.append([e.experiment_id for e in page.experiments])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["big1"], ["big2"]]
