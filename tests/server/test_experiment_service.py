"""ExperimentService over a real channel: create, read, list, update, delete."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import experiment_service_pb2 as es
from polytrial_testkit import (
    Api,
    choice_param,
    error_info,
    experiment,
    experiment_ids,
    float_param,
    int_param,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_created_experiment_reads_back_with_seed_and_times(api: Api) -> None:
    message = experiment("exp-1")
    message.description = "first"
    message.properties.update({"team": "ml"})
    created = api.create(message)
    assert created.name == "experiments/exp-1"
    assert created.generation_strategy.seed == 7
    assert created.create_time.seconds > 0
    got = api.get_experiment("exp-1")
    assert got == created
    assert got.properties["team"] == "ml"


def test_unset_seed_is_drawn_once_and_stored(api: Api) -> None:
    created = api.create(experiment("drawn", seed=None))
    assert created.generation_strategy.HasField("seed")
    assert api.get_experiment("drawn").generation_strategy.seed == (
        created.generation_strategy.seed
    )


def test_duplicate_experiment_id_is_already_exists(api: Api) -> None:
    api.create(experiment("dup"))
    before = api.get_experiment("dup")
    other = experiment("dup", [float_param("z", 0, 5)])
    error = rpc_error(grpc.StatusCode.ALREADY_EXISTS, lambda: api.create(other))
    assert "experiments/dup" in error.details()
    assert error_info(error).reason == "ALREADY_EXISTS"
    assert api.get_experiment("dup") == before


def _p(name: str, **kw: object) -> epb.Parameter:
    return float_param(name, 0.0, 1.0, **kw)  # type: ignore[arg-type]


BAD_EXPERIMENTS: dict[str, tuple[Callable[[], epb.Experiment], str]] = {
    "lower_above_upper": (
        lambda: experiment("bad", [int_param("n", 50, 1)]),
        "experiment.search_space.parameters[0].range",
    ),
    "log_scale_with_zero_lower": (
        lambda: experiment("bad", [float_param("x", 0, 1, log_scale=True)]),
        "experiment.search_space.parameters[0].range",
    ),
    "empty_choice_list": (
        lambda: experiment("bad", [choice_param("c", [])]),
        "experiment.search_space.parameters[0].choice.values",
    ),
    "duplicate_choice_values": (
        lambda: experiment("bad", [choice_param("c", ["a", "b", "a"])]),
        "experiment.search_space.parameters[0].choice.values",
    ),
    "duplicate_parameter_names": (
        lambda: experiment("bad", [_p("x"), _p("x")]),
        "experiment.search_space.parameters[1].name",
    ),
    "invalid_experiment_id": (
        lambda: experiment("Bad/Id"),
        "experiment.experiment_id",
    ),
    "constraint_on_unknown_parameter": (
        lambda: experiment(
            "bad",
            constraints=[
                epb.ParameterConstraint(
                    order=epb.OrderConstraint(
                        lower_parameter="x1", upper_parameter="nope"
                    )
                )
            ],
        ),
        "experiment.search_space.parameter_constraints[0]",
    ),
    "constraint_on_choice_parameter": (
        lambda: experiment(
            "bad",
            [_p("x1"), choice_param("c", [1, 2])],
            constraints=[
                epb.ParameterConstraint(
                    linear=epb.LinearConstraint(weights={"x1": 1, "c": 1}, bound=1)
                )
            ],
        ),
        "experiment.search_space.parameter_constraints[0]",
    ),
    "objective_without_name": (
        lambda: experiment("bad", objectives=[("", True)]),
        "experiment.optimization_config.objectives[0]",
    ),
    "outcome_constraint_without_name": (
        lambda: experiment(
            "bad",
            outcome_constraints=[
                epb.OutcomeConstraint(
                    metric_name="", op=epb.COMPARISON_OP_LESS_EQUAL, bound=1
                )
            ],
        ),
        "experiment.optimization_config.outcome_constraints[0]",
    ),
    "unset_parameter_type": (
        lambda: experiment(
            "bad", [epb.Parameter(name="x", range=epb.RangeParameter(upper=1))]
        ),
        "experiment.search_space.parameters[0].range.type",
    ),
    "unset_comparison_op": (
        lambda: experiment(
            "bad",
            outcome_constraints=[epb.OutcomeConstraint(metric_name="cost", bound=1)],
        ),
        "experiment.optimization_config.outcome_constraints[0].op",
    ),
    "no_parameters": (
        lambda: experiment("bad", []),
        "experiment.search_space.parameters",
    ),
    "unknown_generator_kind": (
        lambda: experiment("bad", kind=42),
        "experiment.generation_strategy.kind",
    ),
    "runner_without_address": (
        lambda: _with_empty_runner(experiment("bad")),
        "experiment.runner.address",
    ),
}


def _with_empty_runner(message: epb.Experiment) -> epb.Experiment:
    message.runner.timeout_s = 5
    return message


@pytest.mark.parametrize("case", sorted(BAD_EXPERIMENTS))
def test_invalid_experiment_is_invalid_argument_naming_the_field_and_stores_nothing(
    api: Api, case: str
) -> None:
    build, field_prefix = BAD_EXPERIMENTS[case]
    error = rpc_error(INVALID, lambda: api.create(build()))
    fields = violated_fields(error)
    assert any(f.startswith(field_prefix) for f in fields), fields
    assert experiment_ids(api) == []


def test_missing_search_space_is_invalid_argument(api: Api) -> None:
    message = experiment("bad")
    message.ClearField("search_space")
    error = rpc_error(INVALID, lambda: api.create(message))
    assert violated_fields(error) == ["experiment.search_space"]
    assert experiment_ids(api) == []


def test_get_and_delete_of_a_missing_experiment_are_not_found(api: Api) -> None:
    for call in (
        lambda: api.get_experiment("ghost"),
        lambda: api.experiments.DeleteExperiment(
            es.DeleteExperimentRequest(name="experiments/ghost")
        ),
    ):
        error = rpc_error(grpc.StatusCode.NOT_FOUND, call)
        assert "experiments/ghost" in error.details()


def test_malformed_experiment_name_is_invalid_argument(api: Api) -> None:
    error = rpc_error(
        INVALID,
        lambda: api.experiments.GetExperiment(es.GetExperimentRequest(name="exp/x")),
    )
    assert violated_fields(error) == ["name"]


def test_listing_experiments_walks_every_page_in_creation_order(api: Api) -> None:
    names = [f"e{i}" for i in range(7)]
    for name in names:
        api.create(experiment(name))
    seen: list[str] = []
    sizes: list[int] = []
    token = ""
    while True:
        page = api.experiments.ListExperiments(
            es.ListExperimentsRequest(page_size=3, page_token=token)
        )
        sizes.append(len(page.experiments))
        seen.extend(e.experiment_id for e in page.experiments)
        token = page.next_page_token
        if not token:
            break
    assert sizes == [3, 3, 1]
    assert seen == names


def test_negative_page_size_and_foreign_token_are_invalid_argument(api: Api) -> None:
    error = rpc_error(
        INVALID,
        lambda: api.experiments.ListExperiments(
            es.ListExperimentsRequest(page_size=-1)
        ),
    )
    assert violated_fields(error) == ["page_size"]
    error = rpc_error(
        INVALID,
        lambda: api.experiments.ListExperiments(
            es.ListExperimentsRequest(page_token="not-a-token")
        ),
    )
    assert violated_fields(error) == ["page_token"]


def test_update_changes_description_and_properties_by_mask(api: Api) -> None:
    api.create(experiment("upd"))
    change = epb.Experiment(name="experiments/upd", description="new")
    change.properties.update({"k": 1})
    got = api.experiments.UpdateExperiment(
        es.UpdateExperimentRequest(
            experiment=change,
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
    )
    assert got.description == "new"
    assert got.properties == struct_pb2.Struct()
    got = api.experiments.UpdateExperiment(
        es.UpdateExperimentRequest(experiment=change)
    )
    assert got.properties["k"] == 1


def test_update_of_an_immutable_field_is_invalid_argument_and_changes_nothing(
    api: Api,
) -> None:
    api.create(experiment("upd"))
    before = api.get_experiment("upd")
    change = epb.Experiment(name="experiments/upd", description="new")
    error = rpc_error(
        INVALID,
        lambda: api.experiments.UpdateExperiment(
            es.UpdateExperimentRequest(
                experiment=change,
                update_mask=field_mask_pb2.FieldMask(paths=["search_space"]),
            )
        ),
    )
    assert violated_fields(error) == ["update_mask"]
    assert api.get_experiment("upd") == before


def test_deleted_experiment_is_gone_and_its_id_can_be_reused(api: Api) -> None:
    api.create(experiment("gone"))
    api.suggest("gone", 2)
    api.experiments.DeleteExperiment(
        es.DeleteExperimentRequest(name="experiments/gone")
    )
    rpc_error(grpc.StatusCode.NOT_FOUND, lambda: api.get_experiment("gone"))
    api.create(experiment("gone"))
    assert api.all_trials("gone") == []
    assert [t.index for t in api.suggest("gone")] == [0]


def test_trial_counts_follow_statuses(api: Api) -> None:
    api.create(experiment("counts"))
    trials = api.suggest("counts", 3)
    api.complete(trials[0], {"loss": 1.0})
    counts = dict(api.get_experiment("counts").trial_counts)
    assert counts == {"RUNNING": 2, "COMPLETED": 1}
