"""gRPC handlers of `polytrial.v1.OrchestrationService`, and its conversions."""

from __future__ import annotations

import grpc
from polytrial.server import resources
from polytrial.server.api.convert import timestamp
from polytrial.server.orchestration import (
    Options,
    Orchestrations,
    OrchestrationView,
    check_options,
)
from polytrial.server.orchestration.policy import sorted_counts
from polytrial.server.orchestration.store import State
from polytrial.v1 import orchestration_service_pb2 as pb
from polytrial.v1 import orchestration_service_pb2_grpc

_STATES = {
    State.RUNNING: pb.ORCHESTRATION_STATE_RUNNING,
    State.COMPLETED: pb.ORCHESTRATION_STATE_COMPLETED,
    State.FAILED: pb.ORCHESTRATION_STATE_FAILED,
    State.STOPPED: pb.ORCHESTRATION_STATE_STOPPED,
}


def options_from_proto(message: pb.OrchestrationOptions) -> Options:
    """Checks a request's options and fills in the defaults.

    Raises:
        InvalidArgument: a value is outside its limits (INVALID_ARGUMENT).
    """

    def optional(name: str) -> float | None:
        # Every option but max_trials and max_parallel_trials has presence.
        value: float = getattr(message, name)
        return value if message.HasField(name) else None  # type: ignore[arg-type]

    min_failed = optional("min_failed_trials_for_failure_check")
    return check_options(
        max_trials=message.max_trials,
        max_parallel_trials=message.max_parallel_trials,
        tolerated_failure_rate=optional("tolerated_failure_rate"),
        min_failed_trials_for_failure_check=(
            None if min_failed is None else int(min_failed)
        ),
        poll_interval_s=optional("poll_interval_s"),
        data_grace_period_s=optional("data_grace_period_s"),
        runner_unreachable_timeout_s=optional("runner_unreachable_timeout_s"),
        timeout_s=optional("timeout_s"),
    )


def options_to_proto(options: Options) -> pb.OrchestrationOptions:
    """The options as stored, every default filled in."""
    return pb.OrchestrationOptions(
        max_trials=options.max_trials,
        max_parallel_trials=options.max_parallel_trials,
        tolerated_failure_rate=options.tolerated_failure_rate,
        min_failed_trials_for_failure_check=options.min_failed_trials_for_failure_check,
        poll_interval_s=options.poll_interval_s,
        data_grace_period_s=options.data_grace_period_s,
        runner_unreachable_timeout_s=options.runner_unreachable_timeout_s,
        timeout_s=options.timeout_s,
    )


def orchestration_to_proto(view: OrchestrationView) -> pb.Orchestration:
    """An orchestration and its trial counts as an `Orchestration` message."""
    record = view.record
    message = pb.Orchestration(
        name=record.name,
        uid=record.uid,
        options=options_to_proto(record.options),
        state=_STATES[record.state],
        state_message=record.state_message,
        trials_created=len(record.trial_indices),
        trial_counts={s.name: n for s, n in sorted_counts(view.counts)},
        trial_indices=record.trial_indices,
        driver=record.lease_owner if record.state is State.RUNNING else "",
    )
    for field, value in (
        ("create_time", record.create_time),
        ("update_time", record.update_time),
        ("end_time", record.end_time),
    ):
        stamp = timestamp(value)
        if stamp is not None:
            getattr(message, field).CopyFrom(stamp)
    return message


class OrchestrationServicer(
    orchestration_service_pb2_grpc.OrchestrationServiceServicer
):
    """Starts, reads and stops orchestrations.

    Args:
        orchestrations: The orchestration service.
    """

    def __init__(self, orchestrations: Orchestrations) -> None:
        self.orchestrations = orchestrations

    def GetOrchestration(
        self, request: pb.GetOrchestrationRequest, context: grpc.ServicerContext
    ) -> pb.Orchestration:
        """Returns an experiment's orchestration."""
        experiment_id = resources.parse_orchestration_name(request.name)
        return orchestration_to_proto(self.orchestrations.get(experiment_id))

    def StartOrchestration(
        self, request: pb.StartOrchestrationRequest, context: grpc.ServicerContext
    ) -> pb.Orchestration:
        """Starts orchestrating an experiment."""
        experiment_id = resources.parse_orchestration_name(request.name)
        options = options_from_proto(request.options)
        view = self.orchestrations.start(
            experiment_id, options, request_id=request.request_id
        )
        return orchestration_to_proto(view)

    def StopOrchestration(
        self, request: pb.StopOrchestrationRequest, context: grpc.ServicerContext
    ) -> pb.Orchestration:
        """Stops a RUNNING orchestration and its trials in flight."""
        experiment_id = resources.parse_orchestration_name(request.name)
        view = self.orchestrations.stop(experiment_id, request.reason)
        return orchestration_to_proto(view)
