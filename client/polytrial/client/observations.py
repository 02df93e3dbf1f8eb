"""Turns what a caller reports for a trial into `Observation` messages.

A result is one of:

    1.23                                  the single objective of the single arm
    (1.23, 0.05)                          mean and standard error
    {"loss": 1.23, "acc": (0.9, None)}    by metric; None is an unknown sem
    {"4_0": 1.23, "4_1": {...}}           a batch trial: by arm name, each as above
    [Observation(...), ...]               the messages' fields spelled out

A plain number has no standard error: that says "unknown", not "noiseless".
Report `(value, 0.0)` for a noiseless measurement.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from polytrial.client.types import Observation
from polytrial.v1 import values_pb2

Number: TypeAlias = float | int
MetricValue: TypeAlias = Number | tuple[Number, Number | None]
ArmResultSpec: TypeAlias = MetricValue | Mapping[str, MetricValue]
Result: TypeAlias = ArmResultSpec | Mapping[str, ArmResultSpec] | Sequence[Observation]


def is_number(value: object) -> bool:
    """Whether a value is a real number (bools are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def build_observations(
    result: Result,
    *,
    trial_index: int,
    arm_names: Sequence[str],
    objective_names: Sequence[str],
    step: int | None = None,
) -> list[Any]:
    """Returns the `Observation` messages a result stands for.

    Args:
        result: What the caller reported (see the module docstring).
        trial_index: The trial's index, to tell arm names from metric names.
        arm_names: The trial's arm names; one for a single-arm trial.
        objective_names: The experiment's objectives, for a bare number.
        step: The step of intermediate data, or None for final data.

    Raises:
        TypeError: a value is not a number, a (mean, sem) pair or a mapping.
        ValueError: a bare number is given for several arms or objectives.
    """
    if _is_observation_list(result):
        observations: Sequence[Observation] = result  # type: ignore[assignment]
        return [_observation_message(o, step) for o in observations]

    if (
        isinstance(result, Mapping)
        and result
        and _keys_are_arm_names(result, trial_index)
    ):
        messages: list[Any] = []
        for arm_name, arm_result in result.items():
            messages.extend(
                _arm_observations(arm_name, arm_result, objective_names, step)
            )
        return messages

    if len(arm_names) != 1:
        raise ValueError(
            f"trial {trial_index} has {len(arm_names)} arms: report a mapping "
            f"arm name -> result, with arm names {list(arm_names)}"
        )
    return _arm_observations(arm_names[0], result, objective_names, step)  # type: ignore[arg-type]


def _is_observation_list(result: object) -> bool:
    return (
        isinstance(result, Sequence)
        and not isinstance(result, str | tuple)
        and all(isinstance(item, Observation) for item in result)
    )


def _keys_are_arm_names(result: Mapping[str, Any], trial_index: int) -> bool:
    pattern = re.compile(rf"^{trial_index}_[0-9]+$")
    return all(isinstance(key, str) and pattern.match(key) for key in result)


def _arm_observations(
    arm_name: str,
    arm_result: ArmResultSpec,
    objective_names: Sequence[str],
    step: int | None,
) -> list[Any]:
    if isinstance(arm_result, Mapping):
        by_metric = dict(arm_result)
    else:
        if len(objective_names) != 1:
            raise ValueError(
                f"arm {arm_name}: a bare value needs exactly one objective, and "
                f"the experiment has {list(objective_names)}; report a mapping "
                "metric name -> value"
            )
        by_metric = {objective_names[0]: arm_result}

    messages = []
    for metric_name, value in by_metric.items():
        mean, sem = _mean_and_sem(value, arm_name, metric_name)
        message = values_pb2.Observation(
            arm_name=arm_name, metric_name=metric_name, mean=mean
        )
        if sem is not None:
            message.sem = sem
        if step is not None:
            message.step = step
        messages.append(message)
    return messages


def _mean_and_sem(
    value: object, arm_name: str, metric_name: str
) -> tuple[float, float | None]:
    if is_number(value):
        return float(value), None  # type: ignore[arg-type]
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and is_number(value[0])
        and (value[1] is None or is_number(value[1]))
    ):
        sem = None if value[1] is None else float(value[1])
        return float(value[0]), sem
    raise TypeError(
        f"arm {arm_name}, metric {metric_name!r}: {value!r} is not a number or a "
        "(mean, sem) pair"
    )


def _observation_message(observation: Observation, step: int | None) -> Any:
    message = values_pb2.Observation(
        arm_name=observation.arm_name,
        metric_name=observation.metric_name,
        mean=observation.mean,
    )
    if observation.sem is not None:
        message.sem = observation.sem
    chosen_step = observation.step if observation.step is not None else step
    if chosen_step is not None:
        message.step = chosen_step
    return message
