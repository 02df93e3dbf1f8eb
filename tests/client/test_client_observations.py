"""What a caller reports becomes the observations it means, with types kept."""

from __future__ import annotations

import numpy as np
import pytest
from polytrial.client import Observation
from polytrial.client.observations import build_observations
from polytrial.client.values import from_value_proto, to_value_proto

pytestmark = pytest.mark.timeout(30)


def _as_tuples(messages: list[object]) -> set[tuple[object, ...]]:
    result: set[tuple[object, ...]] = set()
    for m in messages:
        o = Observation.from_proto(m)
        result.add((o.arm_name, o.metric_name, o.mean, o.sem, o.step))
    return result


def _build(result: object, **kwargs: object) -> set[tuple[object, ...]]:
    options: dict[str, object] = {
        "trial_index": 4,
        "arm_names": ["4_0"],
        "objective_names": ["loss"],
    }
    options.update(kwargs)
    return _as_tuples(build_observations(result, **options))  # type: ignore[arg-type]


def test_a_bare_number_is_the_objective_with_unknown_sem() -> None:
    assert _build(1.5) == {("4_0", "loss", 1.5, None, None)}
    assert _build(np.float64(2.0)) == {("4_0", "loss", 2.0, None, None)}
    assert _build(3) == {("4_0", "loss", 3.0, None, None)}


def test_a_pair_is_mean_and_sem_and_zero_sem_is_kept() -> None:
    assert _build((1.5, 0.1)) == {("4_0", "loss", 1.5, 0.1, None)}
    assert _build((1.5, 0.0)) == {("4_0", "loss", 1.5, 0.0, None)}
    assert _build((1.5, None)) == {("4_0", "loss", 1.5, None, None)}


def test_a_dict_reports_several_metrics() -> None:
    assert _build({"loss": 1.0, "acc": (0.9, 0.01)}, step=3) == {
        ("4_0", "loss", 1.0, None, 3),
        ("4_0", "acc", 0.9, 0.01, 3),
    }


def test_a_dict_by_arm_name_reports_a_batch_trial() -> None:
    built = _build({"4_0": 1.0, "4_1": {"loss": (2.0, 0.5)}}, arm_names=["4_0", "4_1"])
    assert built == {("4_0", "loss", 1.0, None, None), ("4_1", "loss", 2.0, 0.5, None)}


def test_a_bare_number_for_a_batch_trial_is_refused() -> None:
    with pytest.raises(ValueError, match="2 arms"):
        _build(1.0, arm_names=["4_0", "4_1"])


def test_a_bare_number_with_two_objectives_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one objective"):
        _build(1.0, objective_names=["a", "b"])


@pytest.mark.parametrize("value", ["3.0", True, None, (1.0, 2.0, 3.0), ("1", 0.1)])
def test_a_value_that_is_not_a_number_is_refused_naming_the_metric(
    value: object,
) -> None:
    with pytest.raises(TypeError, match="'loss'"):
        _build({"loss": value})


def test_observation_objects_pass_through() -> None:
    built = _build([Observation("4_0", "loss", 1.0, sem=0.2, step=7)])
    assert built == {("4_0", "loss", 1.0, 0.2, 7)}


@pytest.mark.parametrize("value", [True, False, 0, -(2**40), 1.25, "x", ""])
def test_parameter_values_keep_their_type(value: object) -> None:
    back = from_value_proto(to_value_proto(value))
    assert back == value
    assert type(back) is type(value)


def test_numpy_ints_become_ints() -> None:
    assert type(from_value_proto(to_value_proto(np.int64(3)))) is int


def test_other_parameter_value_types_are_refused() -> None:
    with pytest.raises(TypeError, match="bool, int, float or str"):
        to_value_proto([1, 2])
