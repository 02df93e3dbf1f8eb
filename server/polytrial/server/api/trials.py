"""gRPC handlers of `polytrial.v1.TrialService`.

DeployTrial, StopTrial and RefreshTrial talk to runners through
`polytrial.server.runners`, which holds no transaction across a runner call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from polytrial.server import resources, runners
from polytrial.server.api.convert import (
    observations_from_proto,
    parameters_from_proto,
    statuses_from_proto,
    trial_to_proto,
)
from polytrial.server.errors import DeadlineExceeded
from polytrial.server.service import ArmInput, Trials
from polytrial.v1 import trial_pb2, trial_service_pb2, trial_service_pb2_grpc

pb = trial_service_pb2
logger = logging.getLogger(__name__)


def _still_wanted(context: grpc.ServicerContext, method: str) -> Callable[[], None]:
    """A check that refuses to commit once the caller's call has ended.

    Called right before a commit that creates or completes trials: trials
    stored after the caller's deadline or cancellation would never reach it
    and would stay RUNNING, skewing later suggestions.
    """

    def check() -> None:
        remaining = context.time_remaining()
        if context.is_active() and (remaining is None or remaining > 0):
            return
        logger.info("%s: the call ended before its commit; nothing stored", method)
        raise DeadlineExceeded(
            f"{method}: the call's deadline passed (or it was cancelled) before "
            "the result was stored; nothing was stored",
            reason="CALL_ENDED",
        )

    return check


def _runner_scope(context: grpc.ServicerContext) -> runners.CallScope:
    """The call's deadline and end, which bound every runner call made for it.

    When the call ends (its caller cancelled, its deadline passed, or the
    server stopped past its grace period) the runner calls are cancelled, so
    a runner that never answers holds this thread no longer than the caller
    waits.
    """
    scope = runners.CallScope.within(context.time_remaining())
    reason = "the call ended (cancelled, past its deadline, or the server stopped)"
    if not context.add_callback(lambda: scope.cancel(reason)):
        scope.cancel(reason)
    return scope


class TrialServicer(trial_service_pb2_grpc.TrialServiceServicer):
    """Suggests, records and moves trials through their lifecycle.

    Args:
        trials: The trial service.
        runner_client: Calls runners for DeployTrial, StopTrial and
            RefreshTrial (None: the process-wide one).
    """

    def __init__(
        self, trials: Trials, runner_client: runners.RunnerClient | None = None
    ) -> None:
        self.trials = trials
        self.runner_client = runner_client or runners.default_client()

    def GetTrial(
        self, request: pb.GetTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Returns one trial."""
        experiment_id, index = resources.parse_trial_name(request.name)
        return trial_to_proto(self.trials.get(experiment_id, index))

    def ListTrials(
        self, request: pb.ListTrialsRequest, context: grpc.ServicerContext
    ) -> pb.ListTrialsResponse:
        """Returns one page of an experiment's trials."""
        experiment_id = resources.parse_experiment_name(request.parent, field="parent")
        trials, token = self.trials.list_page(
            experiment_id,
            statuses=statuses_from_proto(request.statuses),
            size=request.page_size,
            token=request.page_token,
            convert=trial_to_proto,
        )
        return pb.ListTrialsResponse(trials=trials, next_page_token=token)

    def SuggestTrials(
        self, request: pb.SuggestTrialsRequest, context: grpc.ServicerContext
    ) -> pb.SuggestTrialsResponse:
        """Generates new trials."""
        experiment_id = resources.parse_experiment_name(request.parent, field="parent")
        trials = self.trials.suggest(
            experiment_id,
            count=request.count,
            batch=request.batch,
            pinned=parameters_from_proto(
                request.pinned_parameters, field="pinned_parameters"
            ),
            request_id=request.request_id,
            ttl_s=request.ttl_s,
            still_wanted=_still_wanted(context, "SuggestTrials"),
            time_remaining=context.time_remaining,
        )
        return pb.SuggestTrialsResponse(trials=[trial_to_proto(t) for t in trials])

    def AttachTrial(
        self, request: pb.AttachTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Turns user-chosen parameterizations into a trial."""
        experiment_id = resources.parse_experiment_name(request.parent, field="parent")
        arms = [
            ArmInput(
                parameters=parameters_from_proto(
                    arm.parameters, field=f"arms[{i}].parameters"
                ),
                weight=arm.weight,
            )
            for i, arm in enumerate(request.arms)
        ]
        trial = self.trials.attach(
            experiment_id,
            arms=arms,
            batch=request.batch,
            request_id=request.request_id,
            ttl_s=request.ttl_s,
            still_wanted=_still_wanted(context, "AttachTrial"),
        )
        return trial_to_proto(trial)

    def CompleteTrial(
        self, request: pb.CompleteTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Records final observations and completes the trial."""
        experiment_id, index = resources.parse_trial_name(request.name)
        observations = observations_from_proto(request.observations)
        trial = self.trials.complete(
            experiment_id,
            index,
            observations,
            request_id=request.request_id,
            still_wanted=_still_wanted(context, "CompleteTrial"),
        )
        return trial_to_proto(trial)

    def LogTrialData(
        self, request: pb.LogTrialDataRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Records intermediate observations."""
        experiment_id, index = resources.parse_trial_name(request.name)
        observations = observations_from_proto(request.observations)
        return trial_to_proto(self.trials.log_data(experiment_id, index, observations))

    def MarkTrialStaged(
        self, request: pb.MarkTrialStagedRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """CANDIDATE -> STAGED."""
        experiment_id, index = resources.parse_trial_name(request.name)
        return trial_to_proto(self.trials.mark_staged(experiment_id, index))

    def MarkTrialRunning(
        self, request: pb.MarkTrialRunningRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """CANDIDATE or STAGED -> RUNNING."""
        experiment_id, index = resources.parse_trial_name(request.name)
        trial = self.trials.mark_running(experiment_id, index, ttl_s=request.ttl_s)
        return trial_to_proto(trial)

    def FailTrial(
        self, request: pb.FailTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Moves a trial to FAILED."""
        experiment_id, index = resources.parse_trial_name(request.name)
        trial = self.trials.fail(experiment_id, index, reason=request.reason)
        return trial_to_proto(trial)

    def AbandonTrial(
        self, request: pb.AbandonTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Moves a trial to ABANDONED."""
        experiment_id, index = resources.parse_trial_name(request.name)
        trial = self.trials.abandon(experiment_id, index, reason=request.reason)
        return trial_to_proto(trial)

    def EarlyStopTrial(
        self, request: pb.EarlyStopTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Moves a RUNNING trial with data to EARLY_STOPPED."""
        experiment_id, index = resources.parse_trial_name(request.name)
        trial = self.trials.early_stop(experiment_id, index, reason=request.reason)
        return trial_to_proto(trial)

    def HeartbeatTrial(
        self, request: pb.HeartbeatTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Renews a RUNNING trial's time-to-live."""
        experiment_id, index = resources.parse_trial_name(request.name)
        trial = self.trials.heartbeat(experiment_id, index, ttl_s=request.ttl_s)
        return trial_to_proto(trial)

    def DeployTrial(
        self, request: pb.DeployTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Deploys a CANDIDATE trial through its runner (`runners.deployment`)."""
        experiment_id, index = resources.parse_trial_name(request.name)
        runner = request.runner if request.HasField("runner") else None
        deployments = runners.Deployments(self.trials.db, self.runner_client)
        trial = deployments.deploy(
            experiment_id, index, runner, scope=_runner_scope(context)
        )
        return trial_to_proto(trial)

    def StopTrial(
        self, request: pb.StopTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Stops a deployed trial through its runner and records the outcome."""
        experiment_id, index = resources.parse_trial_name(request.name)
        deployments = runners.Deployments(self.trials.db, self.runner_client)
        trial = deployments.stop(
            experiment_id, index, request.reason, scope=_runner_scope(context)
        )
        return trial_to_proto(trial)

    def RefreshTrial(
        self, request: pb.RefreshTrialRequest, context: grpc.ServicerContext
    ) -> trial_pb2.Trial:
        """Polls a deployed trial's runner, fetches its data, stores changes."""
        experiment_id, index = resources.parse_trial_name(request.name)
        deployments = runners.Deployments(self.trials.db, self.runner_client)
        trial = deployments.refresh(experiment_id, index, scope=_runner_scope(context))
        return trial_to_proto(trial)
