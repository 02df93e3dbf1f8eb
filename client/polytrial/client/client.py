"""The Python client of a Polytrial server: plain Python in, dataclasses out.

    with Client("localhost:50051") as client:
        client.create_experiment(
            "tune", parameters=[RangeParameter("lr", 1e-4, 1e-1, log_scale=True)],
            objectives={"loss": "minimize"},
        )
        trial = client.suggest("tune")
        client.complete_trial(trial, train(**trial.parameters))

Every RPC of ExperimentService, TrialService, ResultService and
OrchestrationService has a method.
Reads, and the three mutations that carry a request id (suggest, attach,
complete), are retried on UNAVAILABLE and DEADLINE_EXCEEDED with the same
request id; other mutations are made once, since repeating a state change
that did happen would answer FAILED_PRECONDITION.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import field_mask_pb2
from polytrial.client.errors import (
    AlreadyExistsError,
    UnavailableError,
    from_rpc_error,
)
from polytrial.client.names import (
    ExperimentRef,
    TrialRef,
    experiment_id_of,
    experiment_name,
    split_trial_name,
    trial_name,
)
from polytrial.client.observations import Result, build_observations
from polytrial.client.orchestration import (
    Orchestration,
    options_to_proto,
)
from polytrial.client.retry import NO_RETRY, RetryPolicy, call_with_retry
from polytrial.client.search_space import (
    ConstraintSpec,
    MetricSource,
    ObjectivesSpec,
    OutcomeConstraintSpec,
    ParameterSpec,
    RunnerConfig,
    StrategySpec,
    constraint_to_proto,
    metric_source_to_proto,
    optimization_config_to_proto,
    parameter_to_proto,
    parse_constraint,
    parse_objectives,
    parse_outcome_constraint,
    parse_parameters,
    parse_strategy,
    runner_to_proto,
    strategy_to_proto,
)
from polytrial.client.types import ArmResult, Experiment, Trial, TrialStatus
from polytrial.client.values import ParameterValue, to_parameters_proto, to_struct
from polytrial.v1 import (
    experiment_pb2,
    experiment_service_pb2,
    experiment_service_pb2_grpc,
    orchestration_service_pb2,
    orchestration_service_pb2_grpc,
    result_service_pb2,
    result_service_pb2_grpc,
    trial_service_pb2,
    trial_service_pb2_grpc,
)

if TYPE_CHECKING:
    from polytrial.client.optimize import (
        Evaluate,
        OptimizationSummary,
        ProgressCallback,
    )

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
"""Deadline of one call attempt unless the client is given another."""

DEFAULT_SUGGEST_TIMEOUT_S = 300.0
"""Deadline of one SuggestTrials attempt: a Bayesian-optimization batch of many
trials can take minutes on a busy server. A suggestion whose deadline passes
stores nothing; the retry (same request id) starts it again."""

MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest response the client accepts. The server ends List pages near
3 MiB, but a single trial with very many observations can be larger than
gRPC's default 4 MiB."""

ArmSpec = Mapping[str, ParameterValue] | tuple[Mapping[str, ParameterValue], float]


def _check_address(address: str) -> None:
    """Refuses an address gRPC would only fail on after the connect timeout.

    Accepts `host:port`, `[ipv6]:port`, `unix:/path` and gRPC target URIs
    (`dns:///host:port`); an empty address, a host without a port or a port
    outside 1-65535 is a ValueError at once (gRPC would silently take port
    99999 as 34463, and port 0 reaches no server).
    """
    if "://" in address or address.startswith("unix:"):
        return
    host, separator, port = address.rpartition(":")
    digits = port.isascii() and port.isdigit()
    if not separator or not host.strip() or not digits or not 1 <= int(port) <= 65535:
        raise ValueError(
            "address must be host:port with a port from 1 to 65535 (as "
            "localhost:50051), [ipv6]:port, unix:/path or a gRPC target URI; "
            f"got {address!r}"
        )


class Client:
    """A connection to a Polytrial server.

    Use it as a context manager, or call `close()`. It is safe to share one
    client between threads (gRPC channels are).

    Args:
        address: The server's gRPC target, for example "localhost:50051".
        timeout_s: Deadline of each call attempt, in seconds.
        suggest_timeout_s: Deadline of each SuggestTrials attempt, in
            seconds; it also extends that call's total retry budget.
        retry: How calls that are safe to repeat are retried; `NO_RETRY`
            turns retries off.
        credentials: TLS credentials; None opens a plaintext channel.
        channel_options: Extra gRPC channel options.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        suggest_timeout_s: float = DEFAULT_SUGGEST_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout_s <= 0 or suggest_timeout_s <= 0:
            raise ValueError("timeout_s and suggest_timeout_s must be positive")
        _check_address(address)
        self.address = address
        self.timeout_s = timeout_s
        self.suggest_timeout_s = suggest_timeout_s
        self.retry = retry if retry is not None else RetryPolicy()
        options = list(channel_options)
        if not any(name == "grpc.max_receive_message_length" for name, _ in options):
            options.append(
                ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES)
            )
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._experiments = experiment_service_pb2_grpc.ExperimentServiceStub(
            self._channel
        )
        self._trials = trial_service_pb2_grpc.TrialServiceStub(self._channel)
        self._results = result_service_pb2_grpc.ResultServiceStub(self._channel)
        self._orchestrations = orchestration_service_pb2_grpc.OrchestrationServiceStub(
            self._channel
        )
        # Objectives never change after creation, so the names needed to expand
        # a bare number into an observation are fetched once per experiment.
        self._objective_names: dict[str, tuple[str, ...]] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def wait_until_ready(self, timeout_s: float = 10.0) -> None:
        """Blocks until the channel is connected.

        Raises:
            UnavailableError: the server did not answer within `timeout_s`.
        """
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise UnavailableError(
                f"no Polytrial server answered at {self.address} within {timeout_s:g}s"
            ) from None

    # Experiments ---------------------------------------------------------------

    def create_experiment(
        self,
        experiment_id: str,
        *,
        parameters: Sequence[ParameterSpec],
        objectives: ObjectivesSpec,
        parameter_constraints: Sequence[ConstraintSpec] = (),
        outcome_constraints: Sequence[OutcomeConstraintSpec] = (),
        objective_thresholds: Mapping[str, float] | None = None,
        tracking_metrics: Sequence[str] = (),
        generation_strategy: StrategySpec = None,
        description: str = "",
        properties: Mapping[str, Any] | None = None,
        status_quo: Mapping[str, ParameterValue] | None = None,
        runner: RunnerConfig | str | None = None,
        metric_sources: Sequence[MetricSource] = (),
        exist_ok: bool = False,
    ) -> Experiment:
        """Creates an experiment.

        Args:
            experiment_id: 1-63 lowercase letters, digits, `-` or `_`,
                starting with a letter.
            parameters: `RangeParameter`, `ChoiceParameter`, `FixedParameter`
                or their plain-dict forms.
            objectives: `{"metric": "minimize" | "maximize"}` or `Objective`s.
            parameter_constraints: `LinearConstraint`, `OrderConstraint` or
                strings such as "x1 + x2 <= 1" and "x1 <= x2".
            outcome_constraints: `OutcomeConstraint`s or "metric >= bound".
            objective_thresholds: Reference point of a multi-objective
                experiment, by metric.
            tracking_metrics: Metrics recorded but not optimized.
            generation_strategy: "sobol", "bayesian", a `GenerationStrategy`,
                or None for the server's default (Sobol, then BO).
            description: Free text.
            properties: Free-form JSON-like properties.
            status_quo: The baseline parameterization.
            runner: The runner that deploys trials (an address or a config).
            metric_sources: Where metrics come from, when not from clients.
            exist_ok: Return the existing experiment instead of raising when
                one with this id and the same parameter and objective names
                exists already (create-or-get for many workers).

        Raises:
            InvalidArgumentError: a part of the definition is invalid; its
                `violations` name the fields (INVALID_ARGUMENT).
            AlreadyExistsError: the id is taken (ALREADY_EXISTS), or with
                `exist_ok` taken by an experiment with other parameters or
                objectives.
            ValueError, TypeError: a helper or dict could not be read; an
                item of `parameters` that is neither is a TypeError naming it
                (`parameters[i]`). `properties` with a key that is not a str or
                a value JSON cannot hold is a TypeError, and nesting deeper
                than 32 levels a ValueError, naming the path
                (`properties['a']`).
        """
        parsed_parameters = parse_parameters(parameters)
        parsed_objectives = parse_objectives(objectives)
        message = experiment_pb2.Experiment(
            experiment_id=experiment_id,
            description=description,
            search_space=experiment_pb2.SearchSpace(
                parameters=[parameter_to_proto(p) for p in parsed_parameters],
                parameter_constraints=[
                    constraint_to_proto(parse_constraint(c))
                    for c in parameter_constraints
                ],
            ),
            optimization_config=optimization_config_to_proto(
                parsed_objectives,
                [parse_outcome_constraint(c) for c in outcome_constraints],
                objective_thresholds or {},
                tracking_metrics,
            ),
            metric_sources=[metric_source_to_proto(s) for s in metric_sources],
        )
        strategy = parse_strategy(generation_strategy)
        if strategy is not None:
            message.generation_strategy.CopyFrom(strategy_to_proto(strategy))
        if properties is not None:
            message.properties.CopyFrom(to_struct(properties))
        if status_quo is not None:
            message.status_quo.CopyFrom(
                experiment_pb2.Arm(
                    parameters=to_parameters_proto(status_quo, field="status_quo")
                )
            )
        if runner is not None:
            message.runner.CopyFrom(runner_to_proto(runner))

        request = experiment_service_pb2.CreateExperimentRequest(experiment=message)
        try:
            # Without `exist_ok` a repeat after a lost answer would be refused
            # as ALREADY_EXISTS, so only the create-or-get form is retried.
            created = self._call(
                self._experiments.CreateExperiment,
                request,
                method="CreateExperiment",
                retry=exist_ok,
            )
        except AlreadyExistsError:
            if not exist_ok:
                raise
            existing = self.get_experiment(experiment_id)
            wanted_names = tuple(p.name for p in parsed_parameters)
            wanted_objectives = tuple(parsed_objectives)
            if (
                existing.parameter_names != wanted_names
                or existing.objectives != wanted_objectives
            ):
                raise AlreadyExistsError(
                    f"experiments/{experiment_id} exists with parameters "
                    f"{list(existing.parameter_names)} and objectives "
                    f"{list(existing.objectives)}, not the ones asked for",
                    reason="ALREADY_EXISTS",
                ) from None
            return existing
        return self._remember(Experiment.from_proto(created))

    def get_experiment(self, experiment: ExperimentRef) -> Experiment:
        """Returns an experiment.

        Raises:
            NotFoundError: it does not exist (NOT_FOUND).
        """
        request = experiment_service_pb2.GetExperimentRequest(
            name=experiment_name(experiment)
        )
        message = self._call(
            self._experiments.GetExperiment, request, method="GetExperiment"
        )
        return self._remember(Experiment.from_proto(message))

    def list_experiments(self, *, page_size: int = 0) -> Iterator[Experiment]:
        """Yields every experiment in order of creation, fetching page by page.

        Args:
            page_size: Experiments per call; 0 is the server's default.

        Raises:
            InvalidArgumentError: `page_size` is negative (INVALID_ARGUMENT).
        """
        page_token = ""
        while True:
            request = experiment_service_pb2.ListExperimentsRequest(
                page_size=page_size, page_token=page_token
            )
            response = self._call(
                self._experiments.ListExperiments, request, method="ListExperiments"
            )
            for message in response.experiments:
                yield Experiment.from_proto(message)
            page_token = response.next_page_token
            if not page_token:
                return

    def update_experiment(
        self,
        experiment: ExperimentRef,
        *,
        description: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Experiment:
        """Changes an experiment's description and/or properties.

        Only the arguments given are changed; `properties` replaces the whole
        mapping.

        Raises:
            ValueError: neither argument is given, or `properties` nest deeper
                than 32 levels (the message names the path).
            TypeError: `properties` hold a key that is not a str or a value
                JSON cannot hold; the message names its path.
            NotFoundError: the experiment does not exist (NOT_FOUND).
        """
        paths = []
        message = experiment_pb2.Experiment(name=experiment_name(experiment))
        if description is not None:
            message.description = description
            paths.append("description")
        if properties is not None:
            message.properties.CopyFrom(to_struct(properties))
            paths.append("properties")
        if not paths:
            raise ValueError("give a description, properties, or both")
        request = experiment_service_pb2.UpdateExperimentRequest(
            experiment=message, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        updated = self._call(
            self._experiments.UpdateExperiment,
            request,
            method="UpdateExperiment",
            retry=True,  # setting the same values twice is harmless
        )
        return Experiment.from_proto(updated)

    def delete_experiment(self, experiment: ExperimentRef) -> None:
        """Deletes an experiment with its trials, data and ended orchestration.

        Raises:
            NotFoundError: it does not exist (NOT_FOUND).
            FailedPreconditionError: its orchestration is RUNNING (reason
                ORCHESTRATION_RUNNING); nothing is deleted. Stop it first with
                `stop_orchestration`, which also stops its trials in flight.
        """
        request = experiment_service_pb2.DeleteExperimentRequest(
            name=experiment_name(experiment)
        )
        self._call(
            self._experiments.DeleteExperiment,
            request,
            method="DeleteExperiment",
            retry=False,
        )
        self._objective_names.pop(experiment_id_of(experiment), None)

    # Trials: reading -----------------------------------------------------------

    def get_trial(self, trial: TrialRef) -> Trial:
        """Returns a trial, given as a `Trial`, a name or (experiment id, index).

        Raises:
            NotFoundError: the trial or its experiment does not exist.
        """
        request = trial_service_pb2.GetTrialRequest(name=trial_name(trial))
        return Trial.from_proto(
            self._call(self._trials.GetTrial, request, method="GetTrial")
        )

    def list_trials(
        self,
        experiment: ExperimentRef,
        *,
        statuses: Sequence[TrialStatus | str] = (),
        page_size: int = 0,
    ) -> Iterator[Trial]:
        """Yields an experiment's trials by index, fetching page by page.

        Args:
            experiment: The experiment.
            statuses: Only trials in one of these statuses; empty means all.
            page_size: Trials per call; 0 is the server's default.

        Raises:
            NotFoundError: the experiment does not exist (NOT_FOUND).
            InvalidArgumentError: `page_size` is negative (INVALID_ARGUMENT).
        """
        status_numbers = [TrialStatus(s).to_proto() for s in statuses]
        page_token = ""
        while True:
            request = trial_service_pb2.ListTrialsRequest(
                parent=experiment_name(experiment),
                statuses=status_numbers,
                page_size=page_size,
                page_token=page_token,
            )
            response = self._call(self._trials.ListTrials, request, method="ListTrials")
            for message in response.trials:
                yield Trial.from_proto(message)
            page_token = response.next_page_token
            if not page_token:
                return

    # Trials: creating ----------------------------------------------------------

    def suggest_trials(
        self,
        experiment: ExperimentRef,
        count: int = 1,
        *,
        batch: bool = False,
        pinned: Mapping[str, ParameterValue] | None = None,
        ttl_s: float = 0.0,
        request_id: str | None = None,
    ) -> list[Trial]:
        """Generates `count` new single-arm trials, or one batch trial.

        Suggested trials are RUNNING when the experiment has no runner: the
        caller evaluates them and reports with `complete_trial`.

        Args:
            experiment: The experiment.
            count: Number of trials (or of arms of the batch trial).
            batch: Make one batch trial of `count` arms.
            pinned: Parameters held at these values in every arm.
            ttl_s: Time-to-live of the trials, renewed by `heartbeat_trial`;
                0 means they never expire.
            request_id: Idempotency key; a fresh one is drawn when None and
                reused on every retry.

        Raises:
            SearchSpaceExhaustedError: a finite space has no new arm left.
            InvalidArgumentError: a pinned name or value is invalid.
            NotFoundError: the experiment does not exist.
        """
        request_id = request_id or _new_request_id()
        request = trial_service_pb2.SuggestTrialsRequest(
            parent=experiment_name(experiment),
            count=count,
            batch=batch,
            pinned_parameters=to_parameters_proto(pinned or {}, field="pinned"),
            request_id=request_id,
            ttl_s=ttl_s,
        )
        response = self._call(
            self._trials.SuggestTrials,
            request,
            method="SuggestTrials",
            request_id=request_id,
            timeout_s=self.suggest_timeout_s,
        )
        return [Trial.from_proto(message) for message in response.trials]

    def suggest(
        self,
        experiment: ExperimentRef,
        *,
        pinned: Mapping[str, ParameterValue] | None = None,
        ttl_s: float = 0.0,
    ) -> Trial:
        """Generates one single-arm trial (the "ask" of ask/tell).

        Raises:
            SearchSpaceExhaustedError: a finite space has no new arm left.
            NotFoundError: the experiment does not exist.
        """
        (trial,) = self.suggest_trials(experiment, 1, pinned=pinned, ttl_s=ttl_s)
        return trial

    def attach_trial(
        self,
        experiment: ExperimentRef,
        arms: Mapping[str, ParameterValue] | Sequence[ArmSpec],
        *,
        batch: bool = False,
        ttl_s: float = 0.0,
        request_id: str | None = None,
    ) -> Trial:
        """Makes a trial of parameterizations the caller chose.

        Args:
            experiment: The experiment.
            arms: One parameterization (a dict) for a single-arm trial, or a
                list of parameterizations or (parameterization, weight)
                pairs; several arms make a batch trial.
            batch: Make a batch trial even of one arm.
            ttl_s: Time-to-live, as in `suggest_trials`.
            request_id: Idempotency key; drawn when None.

        Raises:
            InvalidArgumentError: a value is out of bounds, of the wrong type,
                or missing (INVALID_ARGUMENT; no trial is made).
        """
        arm_specs: Sequence[ArmSpec] = [arms] if isinstance(arms, Mapping) else arms
        arm_inputs = []
        for position, spec in enumerate(arm_specs):
            parameters, weight = (spec, 0.0) if isinstance(spec, Mapping) else spec
            arm_inputs.append(
                trial_service_pb2.ArmInput(
                    parameters=to_parameters_proto(
                        parameters, field=f"arms[{position}]"
                    ),
                    weight=weight,
                )
            )
        request_id = request_id or _new_request_id()
        request = trial_service_pb2.AttachTrialRequest(
            parent=experiment_name(experiment),
            arms=arm_inputs,
            batch=batch,
            request_id=request_id,
            ttl_s=ttl_s,
        )
        message = self._call(
            self._trials.AttachTrial,
            request,
            method="AttachTrial",
            request_id=request_id,
        )
        return Trial.from_proto(message)

    # Trials: reporting ---------------------------------------------------------

    def complete_trial(
        self, trial: TrialRef, result: Result, *, request_id: str | None = None
    ) -> Trial:
        """Records final data and moves a RUNNING trial to COMPLETED (the "tell").

        Args:
            trial: A `Trial`, its name, or (experiment id, index).
            result: A number (the single objective), a (mean, sem) pair, a dict
                metric -> number | (mean, sem | None), or for a batch trial a
                dict arm name -> any of those. A bare number has an unknown
                standard error; give (value, 0.0) for a noiseless one.
            request_id: Idempotency key; drawn when None.

        Raises:
            FailedPreconditionError: the trial is not RUNNING, for example
                completed already (FAILED_PRECONDITION; nothing changes).
            InvalidArgumentError: a value is not finite, a metric is unknown,
                or an arm is not in the trial (INVALID_ARGUMENT).
            NotFoundError: the trial does not exist.
        """
        name = trial_name(trial)
        observations = self._observations(trial, name, result, step=None)
        request_id = request_id or _new_request_id()
        request = trial_service_pb2.CompleteTrialRequest(
            name=name, observations=observations, request_id=request_id
        )
        message = self._call(
            self._trials.CompleteTrial,
            request,
            method="CompleteTrial",
            request_id=request_id,
        )
        return Trial.from_proto(message)

    def log_trial_data(
        self, trial: TrialRef, result: Result, *, step: int | None = None
    ) -> Trial:
        """Records intermediate (or partial) data of a RUNNING trial.

        Args:
            trial: The trial.
            result: As in `complete_trial`.
            step: The step (epoch, iteration) of this data.

        Raises:
            FailedPreconditionError: the trial is not RUNNING.
            InvalidArgumentError: a value or metric is invalid.
        """
        name = trial_name(trial)
        request = trial_service_pb2.LogTrialDataRequest(
            name=name, observations=self._observations(trial, name, result, step=step)
        )
        # Not retried: a repeat would store the data twice.
        return self._trial_call(self._trials.LogTrialData, request, "LogTrialData")

    def mark_trial_staged(self, trial: TrialRef) -> Trial:
        """Moves a CANDIDATE trial to STAGED.

        Raises:
            FailedPreconditionError: the trial is not CANDIDATE.
        """
        request = trial_service_pb2.MarkTrialStagedRequest(name=trial_name(trial))
        return self._trial_call(
            self._trials.MarkTrialStaged, request, "MarkTrialStaged"
        )

    def mark_trial_running(self, trial: TrialRef, *, ttl_s: float = 0.0) -> Trial:
        """Moves a CANDIDATE or STAGED trial to RUNNING.

        Raises:
            FailedPreconditionError: the trial is in another status.
        """
        request = trial_service_pb2.MarkTrialRunningRequest(
            name=trial_name(trial), ttl_s=ttl_s
        )
        return self._trial_call(
            self._trials.MarkTrialRunning, request, "MarkTrialRunning"
        )

    def fail_trial(self, trial: TrialRef, reason: str = "") -> Trial:
        """Moves a trial to FAILED with a reason.

        Raises:
            FailedPreconditionError: the trial is final already.
        """
        request = trial_service_pb2.FailTrialRequest(
            name=trial_name(trial), reason=reason
        )
        return self._trial_call(self._trials.FailTrial, request, "FailTrial")

    def abandon_trial(self, trial: TrialRef, reason: str = "") -> Trial:
        """Moves a trial to ABANDONED with a reason; its arms may come again.

        Raises:
            FailedPreconditionError: the trial is final already.
        """
        request = trial_service_pb2.AbandonTrialRequest(
            name=trial_name(trial), reason=reason
        )
        return self._trial_call(self._trials.AbandonTrial, request, "AbandonTrial")

    def early_stop_trial(self, trial: TrialRef, reason: str = "") -> Trial:
        """Moves a RUNNING trial that has data to EARLY_STOPPED.

        Raises:
            FailedPreconditionError: the trial is not RUNNING or has no data.
        """
        request = trial_service_pb2.EarlyStopTrialRequest(
            name=trial_name(trial), reason=reason
        )
        return self._trial_call(self._trials.EarlyStopTrial, request, "EarlyStopTrial")

    def heartbeat_trial(self, trial: TrialRef, *, ttl_s: float = 0.0) -> Trial:
        """Renews the time-to-live of a RUNNING trial.

        Args:
            trial: The trial.
            ttl_s: New time-to-live from now; 0 keeps the previous length.

        Raises:
            FailedPreconditionError: the trial is not RUNNING (it may have
                been declared lost already).
        """
        request = trial_service_pb2.HeartbeatTrialRequest(
            name=trial_name(trial), ttl_s=ttl_s
        )
        # Renewing twice is harmless, so a lost answer is retried.
        return self._trial_call(
            self._trials.HeartbeatTrial, request, "HeartbeatTrial", retry=True
        )

    # Trials: runners -----------------------------------------------------------

    def deploy_trial(
        self, trial: TrialRef, *, runner: RunnerConfig | str | None = None
    ) -> Trial:
        """Deploys a CANDIDATE trial through its (or the given) runner.

        Raises:
            FailedPreconditionError: the trial is not CANDIDATE or has no
                runner.
            UnavailableError: the runner cannot be reached.
        """
        request = trial_service_pb2.DeployTrialRequest(name=trial_name(trial))
        if runner is not None:
            request.runner.CopyFrom(runner_to_proto(runner))
        return self._trial_call(self._trials.DeployTrial, request, "DeployTrial")

    def stop_trial(self, trial: TrialRef, reason: str = "") -> Trial:
        """Asks the trial's runner to stop it and records the outcome.

        Raises:
            FailedPreconditionError: the trial is not deployed or is final.
        """
        request = trial_service_pb2.StopTrialRequest(
            name=trial_name(trial), reason=reason
        )
        return self._trial_call(self._trials.StopTrial, request, "StopTrial")

    def refresh_trial(self, trial: TrialRef) -> Trial:
        """Polls the trial's runner, fetches its data and stores what changed.

        Raises:
            FailedPreconditionError: the trial has no runner.
        """
        request = trial_service_pb2.RefreshTrialRequest(name=trial_name(trial))
        return self._trial_call(self._trials.RefreshTrial, request, "RefreshTrial")

    # Results -------------------------------------------------------------------

    def get_best_arm(self, experiment: ExperimentRef) -> ArmResult:
        """Returns the best arm by observed mean of the single objective.

        Raises:
            FailedPreconditionError: no trial has data for the objective yet.
        """
        request = result_service_pb2.GetBestArmRequest(
            parent=experiment_name(experiment)
        )
        response = self._call(self._results.GetBestArm, request, method="GetBestArm")
        return ArmResult.from_proto(response.best)

    def get_pareto_frontier(self, experiment: ExperimentRef) -> list[ArmResult]:
        """Returns the Pareto-optimal arms of a multi-objective experiment.

        Raises:
            FailedPreconditionError: no trial has data for every objective yet.
        """
        request = result_service_pb2.GetParetoFrontierRequest(
            parent=experiment_name(experiment)
        )
        response = self._call(
            self._results.GetParetoFrontier, request, method="GetParetoFrontier"
        )
        return [ArmResult.from_proto(message) for message in response.arms]

    # Orchestrations: the server keeps the experiment going ----------------------

    def start_orchestration(
        self,
        experiment: ExperimentRef,
        *,
        max_trials: int,
        max_parallel_trials: int = 1,
        tolerated_failure_rate: float | None = None,
        min_failed_trials_for_failure_check: int | None = None,
        poll_interval_s: float | None = None,
        data_grace_period_s: float | None = None,
        runner_unreachable_timeout_s: float | None = None,
        timeout_s: float | None = None,
    ) -> Orchestration:
        """Has the server run the experiment through its runner to a budget.

        None leaves an option to the server's default (see
        `polytrial.v1.OrchestrationOptions`). The call carries a request id
        and is retried with it, so a retry returns the orchestration the
        first attempt started.

        Raises:
            InvalidArgumentError: an option is out of range; its violation
                names the field.
            NotFoundError: the experiment does not exist.
            FailedPreconditionError: the experiment has no runner, an
                objective has no runner or service metric source, or an
                orchestration is RUNNING (reason ORCHESTRATION_RUNNING).
        """
        request_id = _new_request_id()
        request = orchestration_service_pb2.StartOrchestrationRequest(
            name=_orchestration_name(experiment),
            options=options_to_proto(
                max_trials=max_trials,
                max_parallel_trials=max_parallel_trials,
                tolerated_failure_rate=tolerated_failure_rate,
                min_failed_trials_for_failure_check=min_failed_trials_for_failure_check,
                poll_interval_s=poll_interval_s,
                data_grace_period_s=data_grace_period_s,
                runner_unreachable_timeout_s=runner_unreachable_timeout_s,
                timeout_s=timeout_s,
            ),
            request_id=request_id,
        )
        message = self._call(
            self._orchestrations.StartOrchestration,
            request,
            method="StartOrchestration",
            request_id=request_id,
        )
        return Orchestration.from_proto(message)

    def get_orchestration(self, experiment: ExperimentRef) -> Orchestration:
        """Returns the experiment's orchestration.

        Raises:
            NotFoundError: no such experiment, or it was never orchestrated.
        """
        request = orchestration_service_pb2.GetOrchestrationRequest(
            name=_orchestration_name(experiment)
        )
        message = self._call(
            self._orchestrations.GetOrchestration, request, method="GetOrchestration"
        )
        return Orchestration.from_proto(message)

    def stop_orchestration(
        self, experiment: ExperimentRef, reason: str = ""
    ) -> Orchestration:
        """Stops the experiment's orchestration and its trials in flight.

        Stopping an orchestration that already ended returns it unchanged,
        so this call is retried safely.

        Raises:
            NotFoundError: no such experiment, or it was never orchestrated.
        """
        request = orchestration_service_pb2.StopOrchestrationRequest(
            name=_orchestration_name(experiment), reason=reason
        )
        message = self._call(
            self._orchestrations.StopOrchestration, request, method="StopOrchestration"
        )
        return Orchestration.from_proto(message)

    def wait_for_orchestration(
        self,
        experiment: ExperimentRef,
        *,
        timeout_s: float = 3600.0,
        poll_interval_s: float = 1.0,
        on_poll: Callable[[Orchestration], None] | None = None,
    ) -> Orchestration:
        """Polls the orchestration until it ends (COMPLETED, FAILED or STOPPED).

        Args:
            experiment: The experiment.
            timeout_s: How long to wait in all.
            poll_interval_s: Seconds between two reads.
            on_poll: Called with every orchestration read (progress display).

        Returns:
            The ended orchestration.

        Raises:
            TimeoutError: it was still RUNNING after `timeout_s`; it goes on.
            NotFoundError: no such experiment, or it was never orchestrated.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            current = self.get_orchestration(experiment)
            if on_poll is not None:
                on_poll(current)
            if current.is_final:
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{current.name} is still RUNNING after {timeout_s:g}s "
                    f"({current.trials_created} of {current.options.max_trials} "
                    "trials created); it goes on on the server"
                )
            time.sleep(min(poll_interval_s, remaining))

    # The synchronous paradigm ---------------------------------------------------

    def optimize(
        self,
        experiment: ExperimentRef,
        evaluate: Evaluate,
        *,
        num_trials: int,
        on_trial: ProgressCallback | None = None,
        pinned: Mapping[str, ParameterValue] | None = None,
    ) -> OptimizationSummary:
        """Runs ask -> evaluate -> tell for `num_trials` trials.

        See `polytrial.client.optimize` for the rules.
        """
        from polytrial.client.optimize import optimize

        return optimize(
            self,
            experiment,
            evaluate,
            num_trials=num_trials,
            on_trial=on_trial,
            pinned=pinned,
        )

    # Plumbing ------------------------------------------------------------------

    def objective_names(self, experiment: ExperimentRef) -> tuple[str, ...]:
        """The experiment's objective metric names (fetched once, then cached)."""
        experiment_id = experiment_id_of(experiment)
        if experiment_id not in self._objective_names:
            self.get_experiment(experiment_id)
        return self._objective_names[experiment_id]

    def _remember(self, experiment: Experiment) -> Experiment:
        self._objective_names[experiment.experiment_id] = tuple(
            o.metric_name for o in experiment.objectives
        )
        return experiment

    def _observations(
        self, trial: TrialRef, name: str, result: Result, *, step: int | None
    ) -> list[Any]:
        experiment_id, index = split_trial_name(name)
        if isinstance(trial, Trial):
            arm_names = [arm.name for arm in trial.arms]
        else:
            # Arms are named `{trial index}_{arm index}` by the API's rule, so
            # a single-arm trial's arm name is known without a round trip.
            arm_names = [f"{index}_0"]
        return build_observations(
            result,
            trial_index=index,
            arm_names=arm_names,
            objective_names=_LazyNames(lambda: self.objective_names(experiment_id)),
            step=step,
        )

    def _trial_call(
        self, rpc: Callable[..., Any], request: Any, method: str, *, retry: bool = False
    ) -> Trial:
        return Trial.from_proto(self._call(rpc, request, method=method, retry=retry))

    def _call(
        self,
        rpc: Callable[..., T],
        request: Any,
        *,
        method: str,
        retry: bool = True,
        request_id: str = "",
        timeout_s: float | None = None,
    ) -> T:
        """Makes one logical call: attempts, retries, and typed errors.

        Raises:
            PolytrialError: a subclass for the codes the server answers on
                purpose, raised from the `grpc.RpcError`; it carries
                `request_id`, so a caller can replay a call whose outcome it
                did not learn (DEADLINE_EXCEEDED, UNAVAILABLE).
            grpc.RpcError: every other code, unchanged.
        """

        def attempt(timeout_s: float) -> T:
            return rpc(request, timeout=timeout_s)

        policy = self.retry if retry else NO_RETRY
        per_attempt_s = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return call_with_retry(
                attempt,
                policy=policy,
                timeout_s=per_attempt_s,
                method=method,
                request_id=request_id,
                total_timeout_s=max(policy.total_timeout_s, per_attempt_s),
            )
        except grpc.RpcError as error:
            typed = from_rpc_error(error)
            if typed is None:
                raise
            typed.request_id = request_id
            raise typed from error


class _LazyNames(Sequence[str]):
    """Objective names fetched only when a bare number needs them."""

    def __init__(self, fetch: Callable[[], Sequence[str]]) -> None:
        self._fetch = fetch
        self._names: Sequence[str] | None = None

    def _get(self) -> Sequence[str]:
        if self._names is None:
            self._names = self._fetch()
        return self._names

    def __getitem__(self, position: Any) -> Any:
        return self._get()[position]

    def __len__(self) -> int:
        return len(self._get())


def _orchestration_name(experiment: ExperimentRef) -> str:
    return f"{experiment_name(experiment)}/orchestration"


def _new_request_id() -> str:
    return str(uuid.uuid4())
