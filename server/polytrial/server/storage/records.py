"""Plain records the repository reads and writes: no ORM, no protobuf.

The service layer works with these; the gRPC layer turns them into messages.
Experiment configuration (search space, optimization config, strategy, runner)
is kept as opaque bytes that only the service layer interprets, so the storage
layer never depends on the API's message types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ParameterValue = bool | int | float | str


class TrialStatus(enum.Enum):
    """A trial's lifecycle status; the names match `polytrial.v1.TrialStatus`."""

    CANDIDATE = "CANDIDATE"
    STAGED = "STAGED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EARLY_STOPPED = "EARLY_STOPPED"
    ABANDONED = "ABANDONED"


@dataclass
class ExperimentRecord:
    """One stored experiment.

    Attributes:
        experiment_id: The user-chosen id (one path segment).
        config: Serialized configuration, interpreted by the service layer.
        description: Free text.
        properties: Free-form JSON-able user properties.
        create_time: When it was created (UTC).
        update_time: When it was last changed (UTC).
        next_trial_index: The index the next trial gets.
        sobol_draws: Sobol points consumed so far.
        trials_generated: Trials made by the generator (not attached).
        trial_counts: Number of trials by status name.
        seq: Creation order, used as the listing cursor. A deleted and
            re-created experiment gets a new one, so it also tells the two
            apart.
        generation_lease: The token of the suggestion generating arms for this
            experiment right now ("" when none).
        generation_lease_expire_time: When that lease lapses unless renewed.
    """

    experiment_id: str
    config: bytes
    description: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None
    next_trial_index: int = 0
    sobol_draws: int = 0
    trials_generated: int = 0
    trial_counts: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    generation_lease: str = ""
    generation_lease_expire_time: datetime | None = None


@dataclass
class ArmRecord:
    """One arm of a trial.

    Attributes:
        name: `{trial index}_{arm index}`.
        parameters: Typed parameter values.
        key: The search space's canonical key of the parameters (`arm_key`).
        weight: Relative weight in a batch trial.
    """

    name: str
    parameters: dict[str, ParameterValue]
    key: str
    weight: float = 1.0


@dataclass
class ObservationRecord:
    """One observed value; `step` is None for final data, `sem` None if unknown."""

    arm_name: str
    metric_name: str
    mean: float
    sem: float | None = None
    step: int | None = None


@dataclass
class TrialRecord:
    """One stored trial with its arms and observations."""

    experiment_id: str
    index: int
    status: TrialStatus
    arms: list[ArmRecord]
    is_batch: bool = False
    observations: list[ObservationRecord] = field(default_factory=list)
    create_time: datetime | None = None
    stage_time: datetime | None = None
    run_time: datetime | None = None
    end_time: datetime | None = None
    status_reason: str = ""
    deployed_name: str = ""
    run_metadata: dict[str, Any] = field(default_factory=dict)
    generator: str = ""
    num_observations: int = 0
    generation_details: dict[str, Any] = field(default_factory=dict)
    ttl_s: float = 0.0
    expire_time: datetime | None = None
    runner: bytes | None = None
    deployment_error: str = ""
    missing_metrics: list[str] = field(default_factory=list)
