"""Orchestrations on the client side: the server keeps an experiment going.

    with Client("localhost:50051") as client:
        client.start_orchestration("tune", max_trials=30, max_parallel_trials=3)
        done = client.wait_for_orchestration("tune", timeout_s=600)
        print(done.state, done.trial_counts)

The server deploys each trial through the experiment's runner, collects its
data, fails the trials that cannot end well, and stops on its own when the
budget is used (COMPLETED), too many trials failed (FAILED), or it is
stopped (STOPPED).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from polytrial.client.types import TrialStatus
from polytrial.client.values import from_timestamp
from polytrial.v1 import orchestration_service_pb2 as pb


class OrchestrationState(StrEnum):
    """Where an orchestration stands; see `polytrial.v1.OrchestrationState`."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    def __repr__(self) -> str:
        # As `TrialStatus`: `OrchestrationState.COMPLETED` in printed containers.
        return f"{type(self).__name__}.{self.name}"

    @property
    def is_final(self) -> bool:
        """Whether the orchestration has ended."""
        return self is not OrchestrationState.RUNNING

    @classmethod
    def from_proto(cls, number: int) -> OrchestrationState:
        """The state of a `polytrial.v1.OrchestrationState` number.

        Raises:
            ValueError: the number is UNSPECIFIED or unknown to this client.
        """
        name = pb.OrchestrationState.Name(number).removeprefix("ORCHESTRATION_STATE_")  # type: ignore[arg-type]
        return cls(name)


@dataclass(frozen=True)
class OrchestrationOptions:
    """How an orchestration runs, defaults filled in by the server.

    Attributes:
        max_trials: Trials it creates (the budget).
        max_parallel_trials: Trials in flight at most.
        tolerated_failure_rate: Largest fraction of failed trials tolerated.
        min_failed_trials_for_failure_check: Failures before the rate counts.
        poll_interval_s: Seconds between two refreshes.
        data_grace_period_s: Seconds a runner-COMPLETED trial may wait for data.
        runner_unreachable_timeout_s: Seconds a runner may stay unreachable.
        timeout_s: Seconds until it stops; 0 means never.
    """

    max_trials: int
    max_parallel_trials: int
    tolerated_failure_rate: float
    min_failed_trials_for_failure_check: int
    poll_interval_s: float
    data_grace_period_s: float
    runner_unreachable_timeout_s: float
    timeout_s: float


@dataclass(frozen=True)
class Orchestration:
    """An experiment's orchestration.

    Attributes:
        name: `experiments/{experiment_id}/orchestration`.
        experiment_id: The experiment's id.
        uid: A new id for every start.
        options: Its options.
        state: Where it stands.
        state_message: Why (the failure counts of a FAILED one, say).
        trials_created: Trials it created.
        trial_counts: Its trials by status; they add up to `trials_created`.
        trial_indices: Its trials' indices, in creation order.
        driver: The server replica driving it; empty once it ended.
        create_time, update_time, end_time: Timestamps (UTC).
        raw: The `polytrial.v1.Orchestration` message.
    """

    name: str
    experiment_id: str
    uid: str
    options: OrchestrationOptions
    state: OrchestrationState
    state_message: str
    trials_created: int
    trial_counts: dict[TrialStatus, int]
    trial_indices: tuple[int, ...]
    driver: str
    create_time: datetime | None
    update_time: datetime | None
    end_time: datetime | None
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def is_final(self) -> bool:
        """Whether it has ended."""
        return self.state.is_final

    @classmethod
    def from_proto(cls, message: Any) -> Orchestration:
        """Builds an orchestration of a `polytrial.v1.Orchestration` message."""
        options = message.options
        return cls(
            name=message.name,
            experiment_id=message.name.split("/")[1],
            uid=message.uid,
            options=OrchestrationOptions(
                max_trials=options.max_trials,
                max_parallel_trials=options.max_parallel_trials,
                tolerated_failure_rate=options.tolerated_failure_rate,
                min_failed_trials_for_failure_check=(
                    options.min_failed_trials_for_failure_check
                ),
                poll_interval_s=options.poll_interval_s,
                data_grace_period_s=options.data_grace_period_s,
                runner_unreachable_timeout_s=options.runner_unreachable_timeout_s,
                timeout_s=options.timeout_s,
            ),
            state=OrchestrationState.from_proto(message.state),
            state_message=message.state_message,
            trials_created=message.trials_created,
            trial_counts={
                TrialStatus(name): int(count)
                for name, count in message.trial_counts.items()
                if name in TrialStatus.__members__
            },
            trial_indices=tuple(message.trial_indices),
            driver=message.driver,
            create_time=from_timestamp(message, "create_time"),
            update_time=from_timestamp(message, "update_time"),
            end_time=from_timestamp(message, "end_time"),
            raw=message,
        )


def options_to_proto(
    *,
    max_trials: int,
    max_parallel_trials: int,
    tolerated_failure_rate: float | None,
    min_failed_trials_for_failure_check: int | None,
    poll_interval_s: float | None,
    data_grace_period_s: float | None,
    runner_unreachable_timeout_s: float | None,
    timeout_s: float | None,
) -> pb.OrchestrationOptions:
    """An `OrchestrationOptions` message; None leaves a field to the server."""
    message = pb.OrchestrationOptions(
        max_trials=max_trials, max_parallel_trials=max_parallel_trials
    )
    optional: dict[str, float | int | None] = {
        "tolerated_failure_rate": tolerated_failure_rate,
        "min_failed_trials_for_failure_check": min_failed_trials_for_failure_check,
        "poll_interval_s": poll_interval_s,
        "data_grace_period_s": data_grace_period_s,
        "runner_unreachable_timeout_s": runner_unreachable_timeout_s,
        "timeout_s": timeout_s,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(message, name, value)
    return message
