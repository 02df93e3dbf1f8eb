"""What a runner sees and answers: plain Python, no protobuf.

Parameter values keep their type (`bool | int | float | str`). Run metadata is
a JSON object; note that protobuf's `Struct` stores every number as a double, so
an int put into metadata comes back as a float.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ParameterValue = bool | int | float | str
JsonObject = dict[str, Any]


class TrialKind(enum.Enum):
    """Whether a trial has one arm or is a batch evaluated together."""

    SINGLE_ARM = 1
    BATCH = 2


class TrialState(enum.Enum):
    """The external system's view of a deployed trial (what `poll` returns)."""

    STAGED = 1
    RUNNING = 2
    COMPLETED = 3
    FAILED = 4
    STOPPED = 5


@dataclass(frozen=True)
class Arm:
    """One arm to evaluate.

    Attributes:
        name: `{trial index}_{arm index}`, for example "3_0".
        parameters: The value of every parameter, by name.
        weight: Relative weight in a batch trial (1 for single-arm trials).
    """

    name: str
    parameters: Mapping[str, ParameterValue]
    weight: float = 1.0


@dataclass(frozen=True)
class Trial:
    """The trial a call is about, with what the server stored for it.

    Attributes:
        experiment_id: Id of the experiment.
        trial_index: Index of the trial within the experiment.
        kind: Single-arm or batch.
        arms: The arms.
        run_metadata: What `run` returned (empty during `run`), so a runner
            needs no state of its own.
        metric_names: The metrics the experiment wants.
    """

    experiment_id: str
    trial_index: int
    kind: TrialKind
    arms: Sequence[Arm]
    run_metadata: JsonObject = field(default_factory=dict)
    metric_names: Sequence[str] = ()


@dataclass(frozen=True)
class TrialStatus:
    """A polled state and, for FAILED, why."""

    state: TrialState
    reason: str = ""


@dataclass(frozen=True)
class Observation:
    """One observed value of one metric for one arm.

    Attributes:
        arm_name: The arm, for example "3_0".
        metric_name: The metric.
        mean: The observed mean; must be finite.
        sem: Standard error of the mean; None means unknown (not zero).
        step: Step of an intermediate observation; None for final data.
    """

    arm_name: str
    metric_name: str
    mean: float
    sem: float | None = None
    step: int | None = None
