"""Deploying, stopping and refreshing trials through their runners.

Each operation is three steps, and no database transaction is ever held while
a runner is called:

    1. a short transaction reads (and, for a deployment, records) what is needed
    2. the runner calls, with deadlines and bounded retries (`client.py`)
    3. a second short transaction stores the outcome, re-checking the trial

Deployment outcomes:

    Run answered                    -> STAGED or RUNNING, metadata and deployed name
    UNAVAILABLE / DEADLINE_EXCEEDED -> CANDIDATE with `deployment_error`; the RPC
      (after retries)                  answers UNAVAILABLE / DEADLINE_EXCEEDED
    any other status (a refusal)    -> FAILED with the runner's message as reason
    metadata over the size limit    -> FAILED, and the job is asked to stop (the
                                       stop carries the fields that fit the limit)
    metadata holding NaN or an      -> FAILED naming where, and the job is asked
      infinity (not JSON)              to stop (the stop carries the other fields)
    the caller's call ends          -> CANDIDATE with `deployment_error`; the
      (deadline, cancel, shutdown)     runner call is cancelled

A repeated deployment carries the same key, so a runner that did start the job
while the server stopped waiting answers with the first job's metadata.

Every write after a runner call re-checks that it writes to the experiment
incarnation step 1 read (the deployment key is derived from the experiment's
row sequence and creation time): an experiment deleted, or deleted and created
again under the same id, while the runner was called gets nothing stored, the
call answers ABORTED, and a job started for it is asked to stop. Only one
deployment attempt per trial is in flight: while one is, a DeployTrial through
a different runner is refused with ABORTED (one through the same runner shares
the key, so the runner starts one job).

Every runner call is bounded by the caller's deadline and cancelled when the
caller's call ends (`CallScope`), so a runner that never answers holds a
server thread no longer than its caller waits, and the in-flight cap of
`client.py` keeps it from holding more than a few. A trial failed as lost
(its time-to-live ran out) is not left running on its runner: the sweep asks
the runner to stop its job (`stop_lost`, best effort).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import struct_pb2
from polytrial.server import resources
from polytrial.server.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    PolytrialError,
    Unavailable,
)
from polytrial.server.runners.client import (
    CallScope,
    RunnerCallError,
    RunnerClient,
    RunnerTarget,
)
from polytrial.server.runners.fetched_data import store_fetched
from polytrial.server.runners.messages import (
    MAX_RUN_METADATA_BYTES,
    RunnerMetadata,
    cap_metadata,
    check_runner_config,
    deployment_key,
    observation_records,
    read_metadata,
    runner_target,
    runner_trial,
)
from polytrial.server.service import lifecycle
from polytrial.server.service.config import ExperimentConfig, load_config
from polytrial.server.storage import (
    Database,
    ObservationRecord,
    Repository,
    TrialRecord,
    TrialStatus,
)
from polytrial.v1 import experiment_pb2
from polytrial.v1 import runner_service_pb2 as pb

logger = logging.getLogger(__name__)

S = TrialStatus
DEPLOYED = frozenset({S.STAGED, S.RUNNING})


def _now() -> datetime:
    return datetime.now(UTC)


def _trial_label(experiment_id: str, trial_index: int) -> str:
    return resources.trial_name(experiment_id, trial_index)


@dataclass
class _Deployment:
    """What step 1 of a deployment hands to the runner calls."""

    trial: TrialRecord
    config: ExperimentConfig | None = None
    target: RunnerTarget | None = None
    key: str = ""
    message: pb.RunnerTrial | None = None


@dataclass(frozen=True)
class RefreshOutcome:
    """What one refresh saw, beyond the trial as stored after it.

    Attributes:
        trial: The trial as stored after the refresh.
        polled_state: The `RunnerTrialState` the runner reported, or None
            when it cannot be polled (UNIMPLEMENTED) or the trial was not
            STAGED or RUNNING.
        unknown_metrics: Names of metrics the runner (or a metric service)
            sent that it is not the source of; their data was dropped.
        dropped: Why fetched observations were refused (for example a NaN
            mean); they were not stored.
        runner_address: The trial's runner ("" when it was not refreshed).
        fetched_from: Addresses of the data sources (runner, metric
            services) that answered FetchTrialData; empty when none
            implements it, so the data can only come from clients.
    """

    trial: TrialRecord
    polled_state: int | None = None
    unknown_metrics: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    runner_address: str = ""
    fetched_from: tuple[str, ...] = ()


@dataclass
class _Deployed:
    """A deployed trial as step 1 of a stop or refresh reads it."""

    trial: TrialRecord
    config: ExperimentConfig
    target: RunnerTarget
    message: pb.RunnerTrial
    key: str


class Deployments:
    """Deploys, stops and refreshes trials through runners.

    Args:
        db: The database.
        client: The runner client (shared, so channels are reused).
    """

    def __init__(self, db: Database, client: RunnerClient) -> None:
        self.db = db
        self.client = client

    # Deploy ----------------------------------------------------------------

    def deploy(
        self,
        experiment_id: str,
        trial_index: int,
        runner: experiment_pb2.RunnerConfig | None = None,
        *,
        scope: CallScope | None = None,
    ) -> TrialRecord:
        """Deploys a CANDIDATE trial through its runner; see the module outcomes.

        A repeat for a trial this server already deployed returns it unchanged.

        Args:
            experiment_id: The experiment's id.
            trial_index: The trial's index.
            runner: A runner for this trial only, overriding the experiment's.
            scope: The caller's deadline and cancellation, which bound every
                runner call (None: only the runner's timeout and retries).

        Raises:
            InvalidArgument: the override has no address or a bad timeout
                (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not CANDIDATE, or there is no
                runner (FAILED_PRECONDITION).
            Unavailable: the runner stayed unreachable, had too many calls in
                flight already (reason RUNNER_BUSY), or the call was cancelled;
                the trial stays CANDIDATE with `deployment_error`
                (UNAVAILABLE).
            DeadlineExceeded: the runner stayed too slow, or the caller's
                deadline passed; likewise (DEADLINE_EXCEEDED).
        """
        if runner is not None:
            check_runner_config(runner, field="runner")

        # Step 1: record the attempt and its key.
        attempt = self.db.run(
            lambda repo: self._record_attempt(repo, experiment_id, trial_index, runner)
        )
        if attempt.target is None or attempt.message is None:
            return attempt.trial  # a repeat of a deployment that succeeded
        target, label = attempt.target, _trial_label(experiment_id, trial_index)
        logger.info("deploying %s through runner %s", label, target.address)

        # Step 2: ask the runner, holding no transaction.
        try:
            staging = self._staging_required(target, scope)
            response = self.client.run(
                target, attempt.message, attempt.key, scope=scope
            )
        except RunnerCallError as error:
            return self._store_failure(experiment_id, trial_index, attempt, error)
        # A stop of the job must carry its metadata, or a stateless runner
        # cannot find it.
        read = read_metadata(response.run_metadata)
        metadata = read.fields
        started = pb.RunnerTrial()
        started.CopyFrom(attempt.message)
        refusal = _metadata_refusal(target, response.run_metadata, read)
        if refusal is not None:
            # Echoing it all could outgrow what the runner accepts (4 MiB by
            # default), or carry values JSON cannot hold, and the stop would
            # never arrive: send the fields that fit and are representable.
            fitting, _ = cap_metadata(metadata)
            started.run_metadata.update(fitting)
            self._stop_quietly(target, started, refusal)
            return self._store_refusal(experiment_id, trial_index, attempt.key, refusal)
        started.run_metadata.CopyFrom(response.run_metadata)

        # Step 3: store the metadata and the new status.
        try:
            trial, orphaned = self.db.run(
                lambda repo: self._store_deployed(
                    repo, experiment_id, trial_index, attempt, metadata, staging
                )
            )
        except Aborted as error:
            logger.warning(
                "%s; asking runner %s to stop the job", error.message, target.address
            )
            self._stop_quietly(target, started, error.message)
            raise
        if orphaned:
            reason = f"{label} became {trial.status.name} while it was being deployed"
            logger.warning(
                "%s; asking runner %s to stop the job", reason, target.address
            )
            self._stop_quietly(target, started, reason)
            return trial
        logger.info(
            "%s deployed as %r, now %s", label, trial.deployed_name, trial.status.name
        )
        return trial

    def _record_attempt(
        self,
        repo: Repository,
        experiment_id: str,
        trial_index: int,
        runner: experiment_pb2.RunnerConfig | None,
    ) -> _Deployment:
        experiment = repo.get_experiment(experiment_id)
        trial = repo.get_trial(experiment_id, trial_index, for_update=True)
        key = deployment_key(experiment, trial_index)
        method = f"DeployTrial/{trial_index}"
        recorded = repo.find_request(experiment_id, method, key) is not None
        if trial.status in DEPLOYED and recorded:
            return _Deployment(trial)
        if trial.status is not S.CANDIDATE:
            raise FailedPrecondition(
                f"{_trial_label(experiment_id, trial_index)} is {trial.status.name}; "
                "only a CANDIDATE trial can be deployed",
                reason="ILLEGAL_TRANSITION",
                metadata={"trial": _trial_label(experiment_id, trial_index)},
            )

        config = load_config(experiment)
        label = _trial_label(experiment_id, trial_index)
        # An attempt recorded for a CANDIDATE that has no deployment error is
        # still in flight (a failed one leaves its error): only the same runner
        # may join it, since the shared key makes that runner start one job.
        in_flight = recorded and not trial.deployment_error
        current = runner_target(config, trial) if in_flight else None
        if runner is not None:
            trial.runner = runner.SerializeToString(deterministic=True)
        target = runner_target(config, trial)
        if current is not None and current != target:
            raise Aborted(
                f"{label} is being deployed through runner {current.address}; "
                f"it cannot also be deployed through {target.address} until "
                "that attempt ends",
                reason="DEPLOYMENT_IN_FLIGHT",
                metadata={"trial": label, "runner": current.address},
            )
        # Clearing the error marks this attempt as the one in flight.
        trial.deployment_error = ""
        repo.save_trial_state(trial)
        if not recorded:
            repo.record_request(experiment_id, method, key, [trial_index], now=_now())
        return _Deployment(trial, config, target, key, runner_trial(config, trial))

    def _staging_required(self, target: RunnerTarget, scope: CallScope | None) -> bool:
        try:
            return self.client.staging_required(target, scope=scope)
        except RunnerCallError as error:
            # StagingRequired is required by the protocol, but a runner that
            # lacks it clearly needs no staging.
            if error.unimplemented:
                return False
            raise

    def _store_deployed(
        self,
        repo: Repository,
        experiment_id: str,
        trial_index: int,
        attempt: _Deployment,
        metadata: dict[str, Any],
        staging: bool,
    ) -> tuple[TrialRecord, bool]:
        """Stores Run's answer; returns the trial and whether its job is orphaned.

        Raises:
            Aborted: the experiment is gone or is a new one under the same id
                (ABORTED).
        """
        trial, _ = _lock_same(repo, experiment_id, trial_index, attempt.key)
        if trial.status is not S.CANDIDATE or trial.runner != attempt.trial.runner:
            # A concurrent deployment with the same key and runner stored the
            # same answer first; anything else means the trial moved on (or
            # went to another runner) without this job.
            same = (
                trial.status in DEPLOYED
                and trial.run_metadata == metadata
                and trial.runner == attempt.trial.runner
            )
            return trial, not same
        name = metadata.get("name")
        trial.run_metadata = metadata
        trial.deployed_name = name if isinstance(name, str) else ""
        trial.deployment_error = ""
        target = S.STAGED if staging else S.RUNNING
        lifecycle.apply_transition(trial, target, now=_now())
        repo.save_trial_state(trial)
        return trial, False

    def _store_failure(
        self,
        experiment_id: str,
        trial_index: int,
        attempt: _Deployment,
        error: RunnerCallError,
    ) -> TrialRecord:
        """Records a failed Run: CANDIDATE and raise if transient, else FAILED."""
        label = _trial_label(experiment_id, trial_index)
        if not error.transient:
            logger.info("runner refused %s: %s", label, error)
            reason = (
                f"runner {error.address} refused the trial ({error.code.name}): "
                f"{error.details}"
            )
            return self._store_refusal(experiment_id, trial_index, attempt.key, reason)

        def keep_candidate(repo: Repository) -> None:
            trial, _ = _lock_same(repo, experiment_id, trial_index, attempt.key)
            if trial.status is S.CANDIDATE and trial.runner == attempt.trial.runner:
                trial.deployment_error = lifecycle.clip_reason(str(error))
                repo.save_trial_state(trial)

        self.db.run(keep_candidate)
        logger.warning("deploying %s failed, it stays CANDIDATE: %s", label, error)
        raise _as_domain_error(f"{label} stays CANDIDATE", error)

    def _store_refusal(
        self, experiment_id: str, trial_index: int, key: str, reason: str
    ) -> TrialRecord:
        def fail(repo: Repository) -> TrialRecord:
            trial, _ = _lock_same(repo, experiment_id, trial_index, key)
            if trial.status is S.CANDIDATE:
                trial.deployment_error = lifecycle.clip_reason(reason)
                lifecycle.apply_transition(trial, S.FAILED, now=_now(), reason=reason)
                repo.save_trial_state(trial)
            return trial

        trial = self.db.run(fail)
        logger.info("%s failed: %s", _trial_label(experiment_id, trial_index), reason)
        return trial

    def _stop_quietly(
        self, target: RunnerTarget, message: pb.RunnerTrial, reason: str
    ) -> None:
        """Asks the runner to stop a job nobody will track; failures are logged.

        The stop gets the runner's timeout whatever is left of the caller's
        deadline: the job must not be left running because the caller left.
        """
        try:
            scope = CallScope.within(target.timeout_s)
            self.client.stop(target, message, reason, scope=scope)
        except RunnerCallError as error:
            logger.warning("could not stop an untracked job: %s", error)

    # Stop ------------------------------------------------------------------

    def stop(
        self,
        experiment_id: str,
        trial_index: int,
        reason: str,
        *,
        scope: CallScope | None = None,
    ) -> TrialRecord:
        """Asks the runner to stop a deployed trial and records the outcome.

        The trial's latest data is fetched first; a RUNNING trial with data
        becomes EARLY_STOPPED, any other STAGED or RUNNING trial ABANDONED. A
        runner that cannot stop jobs (UNIMPLEMENTED) is noted in the reason.
        Metadata the runner returns is merged into the trial's, except fields
        that would take it over `MAX_RUN_METADATA_BYTES` or that hold NaN or
        an infinity (dropped, logged).
        `scope` bounds the runner calls as in `deploy`.

        Raises:
            InvalidArgument: the reason is too long (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not STAGED or RUNNING, has no
                runner, or the runner refused (FAILED_PRECONDITION).
            Unavailable: the runner stayed unreachable; nothing changed
                (UNAVAILABLE).
            DeadlineExceeded: the runner stayed too slow; nothing changed
                (DEADLINE_EXCEEDED).
        """
        lifecycle.check_reason(reason)
        # Step 1: read the deployed trial.
        trial, deployed = self._read_deployed(experiment_id, trial_index)
        label = _trial_label(experiment_id, trial_index)
        if deployed is None:
            raise FailedPrecondition(
                f"{label} is {trial.status.name}; only a STAGED or RUNNING trial "
                "can be stopped through its runner (abandon a CANDIDATE instead)",
                reason="ILLEGAL_TRANSITION",
                metadata={"trial": label},
            )

        # Step 2: stop the job and fetch its last data, holding no transaction.
        note = ""
        stop_metadata: dict[str, Any] = {}
        try:
            response = self.client.stop(
                deployed.target, deployed.message, reason, scope=scope
            )
            stop_metadata = _stop_metadata(label, deployed.target, response)
        except RunnerCallError as error:
            if not error.unimplemented:
                raise _as_domain_error(label, error) from error
            note = " (the runner cannot stop jobs; its job may still run)"
        fetched = self._fetch_quietly(deployed, scope)

        # Step 3: store the data, the merged metadata and the final status.
        def store(repo: Repository) -> TrialRecord:
            trial, config = _lock_same(repo, experiment_id, trial_index, deployed.key)
            if trial.status in lifecycle.FINAL:
                return trial
            store_fetched(repo, config, trial, fetched)
            merged, dropped = cap_metadata(stop_metadata, keep=trial.run_metadata)
            if dropped:
                logger.warning(
                    "%s: runner %s returned stop metadata over the limit of %d "
                    "bytes; fields dropped: %s",
                    label,
                    deployed.target.address,
                    MAX_RUN_METADATA_BYTES,
                    ", ".join(dropped),
                )
            trial.run_metadata = merged
            has_data = trial.status is S.RUNNING and bool(trial.observations)
            target = S.EARLY_STOPPED if has_data else S.ABANDONED
            lifecycle.apply_transition(
                trial, target, now=_now(), reason=f"{reason}{note}".strip()
            )
            repo.save_trial_state(trial)
            return trial

        trial = self.db.run(store)
        logger.info("%s stopped through its runner: %s", label, trial.status.name)
        return trial

    def stop_lost(
        self,
        experiment_id: str,
        trial_index: int,
        reason: str,
        *,
        scope: CallScope | None = None,
    ) -> bool:
        """Asks the runner of a trial failed as lost to stop its job; best effort.

        The trial is not changed (it is final already). Only a trial that was
        deployed through a runner (a DeployTrial was recorded for it) has a
        job to stop. Failures are logged, never raised: the sweep that calls
        this has no caller to tell.

        Args:
            experiment_id: The experiment's id.
            trial_index: The trial's index.
            reason: Sent to the runner.
            scope: Bounds the runner call (None: the runner's timeout and
                retries).

        Returns:
            Whether the runner confirmed the stop.
        """
        label = _trial_label(experiment_id, trial_index)

        # Step 1: read the trial and whether it was deployed through a runner.
        def read(repo: Repository) -> tuple[RunnerTarget, pb.RunnerTrial] | None:
            experiment = repo.get_experiment(experiment_id)
            trial = repo.get_trial(experiment_id, trial_index)
            key = deployment_key(experiment, trial_index)
            method = f"DeployTrial/{trial_index}"
            if repo.find_request(experiment_id, method, key) is None:
                return None
            config = load_config(experiment)
            return runner_target(config, trial), runner_trial(config, trial)

        try:
            found = self.db.run(read, write=False)
        except PolytrialError as error:
            logger.info("%s: no runner job to stop: %s", label, error.message)
            return False
        if found is None:
            return False
        target, message = found

        # Step 2: ask the runner, holding no transaction.
        try:
            self.client.stop(target, message, reason, scope=scope)
        except RunnerCallError as error:
            if error.unimplemented:
                logger.info(
                    "%s is lost; runner %s cannot stop jobs, its job may still run",
                    label,
                    target.address,
                )
            else:
                logger.warning("%s is lost; could not stop its job: %s", label, error)
            return False
        logger.info("%s is lost; runner %s stopped its job", label, target.address)
        return True

    # Refresh ---------------------------------------------------------------

    def refresh(
        self,
        experiment_id: str,
        trial_index: int,
        *,
        scope: CallScope | None = None,
    ) -> TrialRecord:
        """Polls a deployed trial's runner, fetches its data and stores changes.

        `refresh_outcome` without the outcome's details; see there.
        """
        return self.refresh_outcome(experiment_id, trial_index, scope=scope).trial

    def refresh_outcome(
        self,
        experiment_id: str,
        trial_index: int,
        *,
        scope: CallScope | None = None,
    ) -> RefreshOutcome:
        """Polls a deployed trial's runner, fetches its data and stores changes.

        Polled STAGED keeps the trial; RUNNING moves a STAGED trial on;
        COMPLETED completes it once every arm has final data for every
        objective (until then it stays RUNNING); FAILED fails it with the
        runner's reason; STOPPED early-stops it (with data) or abandons it.
        Fetched observations of metrics the experiment does not name, or of
        arms the trial does not have, are dropped with a warning. A poll renews
        a RUNNING trial's time-to-live, as a heartbeat does. A trial that is
        not STAGED or RUNNING is returned unchanged. `scope` bounds the runner
        calls as in `deploy`.

        Raises:
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: there is no runner, or it refused the poll
                (FAILED_PRECONDITION).
            Unavailable: a runner or metric service stayed unreachable;
                nothing changed (UNAVAILABLE).
            DeadlineExceeded: likewise, too slow (DEADLINE_EXCEEDED).
        """
        # Step 1: read the deployed trial.
        trial, deployed = self._read_deployed(experiment_id, trial_index)
        if deployed is None:
            return RefreshOutcome(trial)
        label = _trial_label(experiment_id, trial_index)

        # Step 2: poll and fetch, holding no transaction.
        polled: pb.PollTrialStatusResponse | None = None
        try:
            polled = self.client.poll(deployed.target, deployed.message, scope=scope)
        except RunnerCallError as error:
            if not error.unimplemented:
                raise _as_domain_error(label, error) from error
        unknown: list[str] = []
        answered: list[str] = []
        fetched = self._fetch(deployed, unknown, answered, scope=scope)
        dropped: list[str] = []

        # Step 3: store new data and the status the runner reports.
        def store(repo: Repository) -> TrialRecord:
            trial, config = _lock_same(repo, experiment_id, trial_index, deployed.key)
            if trial.status not in DEPLOYED:
                return trial
            dropped.clear()  # the transaction may run again
            store_fetched(repo, config, trial, fetched, dropped)
            if polled is not None:
                now = _now()
                _apply_polled(config, trial, polled, now=now)
                # The runner vouches for the job, as a client's heartbeat would.
                if trial.status is S.RUNNING and trial.ttl_s > 0:
                    trial.expire_time = lifecycle.expiry(now, trial.ttl_s)
            repo.save_trial_state(trial)
            return trial

        trial = self.db.run(store)
        level = (
            logging.INFO if trial.status is not deployed.trial.status else logging.DEBUG
        )
        logger.log(level, "%s refreshed: %s", label, trial.status.name)
        return RefreshOutcome(
            trial,
            polled.state if polled is not None else None,
            tuple(sorted(set(unknown))),
            tuple(dropped),
            deployed.target.address,
            tuple(answered),
        )

    # Helpers ---------------------------------------------------------------

    def _read_deployed(
        self, experiment_id: str, trial_index: int
    ) -> tuple[TrialRecord, _Deployed | None]:
        """Reads a trial and, when it is STAGED or RUNNING, its runner."""

        def read(repo: Repository) -> tuple[TrialRecord, _Deployed | None]:
            experiment = repo.get_experiment(experiment_id)
            trial = repo.get_trial(experiment_id, trial_index)
            if trial.status not in DEPLOYED:
                return trial, None
            config = load_config(experiment)
            target = runner_target(config, trial)
            message = runner_trial(config, trial)
            key = deployment_key(experiment, trial_index)
            return trial, _Deployed(trial, config, target, message, key)

        return self.db.run(read, write=False)

    def _fetch(
        self,
        deployed: _Deployed,
        unknown: list[str] | None = None,
        answered: list[str] | None = None,
        *,
        scope: CallScope | None = None,
    ) -> list[ObservationRecord]:
        """Fetches each metric from its source (runner or metric service).

        Metrics reported by clients are not fetched. A source that does not
        implement FetchTrialData is skipped. Names of metrics a source sent
        but is not the source of are appended to `unknown`, and the address
        of each source that answered to `answered`.

        Raises:
            Unavailable, DeadlineExceeded, FailedPrecondition: a source failed.
        """
        sources: dict[RunnerTarget, list[str]] = {}
        for source in deployed.config.message.metric_sources:
            if source.kind == experiment_pb2.METRIC_SOURCE_KIND_RUNNER:
                sources.setdefault(deployed.target, []).append(source.metric_name)
            elif source.kind == experiment_pb2.METRIC_SOURCE_KIND_SERVICE:
                service = RunnerTarget(source.address, deployed.target.timeout_s)
                sources.setdefault(service, []).append(source.metric_name)

        label = _trial_label(deployed.trial.experiment_id, deployed.trial.index)
        found: list[ObservationRecord] = []
        for target, names in sources.items():
            try:
                observations = self.client.fetch(
                    target, deployed.message, names, scope=scope
                )
            except RunnerCallError as error:
                if error.unimplemented:
                    logger.debug("%s does not serve data of %s", target.address, label)
                    continue
                raise _as_domain_error(label, error) from error
            if answered is not None:
                answered.append(target.address)
            for obs in observation_records(observations):
                if obs.metric_name in names:
                    found.append(obs)
                else:
                    if unknown is not None:
                        unknown.append(obs.metric_name)
                    logger.warning(
                        "%s: %s sent metric %r, which it is not the source of; dropped",
                        label,
                        target.address,
                        obs.metric_name,
                    )
        return found

    def _fetch_quietly(
        self, deployed: _Deployed, scope: CallScope | None
    ) -> list[ObservationRecord]:
        try:
            return self._fetch(deployed, scope=scope)
        except PolytrialError as error:
            logger.warning("could not fetch the last data: %s", error.message)
            return []


def _lock_same(
    repo: Repository, experiment_id: str, trial_index: int, key: str
) -> tuple[TrialRecord, ExperimentConfig]:
    """Locks the trial if its experiment is still the incarnation of `key`.

    Raises:
        Aborted: the experiment was deleted, or deleted and created again,
            since `key` was derived (ABORTED).
    """
    label = _trial_label(experiment_id, trial_index)
    try:
        experiment = repo.get_experiment(experiment_id)
        same = deployment_key(experiment, trial_index) == key
        trial = repo.get_trial(experiment_id, trial_index, for_update=True)
    except NotFound:
        same = False
    if not same:
        raise Aborted(
            f"experiments/{experiment_id} was deleted while the runner was called "
            f"for {label}; nothing was stored for it",
            reason="EXPERIMENT_REPLACED",
            metadata={"experiment": f"experiments/{experiment_id}"},
        )
    return trial, load_config(experiment)


def _apply_polled(
    config: ExperimentConfig,
    trial: TrialRecord,
    polled: pb.PollTrialStatusResponse,
    *,
    now: datetime,
) -> None:
    """Moves `trial` (STAGED or RUNNING) as far as the runner's state allows.

    A note already in the trial's status reason (fetched observations dropped,
    perhaps by this very refresh) is kept after the reason of the end state.
    """
    note = trial.status_reason
    state = polled.state
    if state == pb.RUNNER_TRIAL_STATE_FAILED:
        reason = f"runner: {polled.reason or 'the job failed'}"
        _end(trial, S.FAILED, now=now, reason=reason, note=note)
        return
    if state == pb.RUNNER_TRIAL_STATE_STOPPED:
        has_data = trial.status is S.RUNNING and bool(trial.observations)
        target = S.EARLY_STOPPED if has_data else S.ABANDONED
        reason = f"stopped by the runner{': ' + polled.reason if polled.reason else ''}"
        _end(trial, target, now=now, reason=reason, note=note)
        return
    running = (pb.RUNNER_TRIAL_STATE_RUNNING, pb.RUNNER_TRIAL_STATE_COMPLETED)
    if state in running and trial.status is S.STAGED:
        lifecycle.apply_transition(trial, S.RUNNING, now=now)
    if state == pb.RUNNER_TRIAL_STATE_COMPLETED and _has_final_objectives(
        config, trial
    ):
        _end(trial, S.COMPLETED, now=now, reason="", note=note)


def _end(
    trial: TrialRecord, target: S, *, now: datetime, reason: str, note: str
) -> None:
    """Ends `trial` in `target` with `reason`, keeping `note` after it."""
    lifecycle.apply_transition(trial, target, now=now, reason=reason)
    if note and note not in reason:
        trial.status_reason = lifecycle.clip_reason(
            f"{reason}; {note}" if reason else note
        )


def _metadata_refusal(
    target: RunnerTarget, message: struct_pb2.Struct, read: RunnerMetadata
) -> str | None:
    """Why Run's metadata fails the trial (values JSON cannot hold, or too big)."""
    if read.problems:
        return (
            f"runner {target.address} returned run metadata that is not "
            f"JSON-representable: {read.describe_problems()}; the job was asked "
            "to stop"
        )
    size = message.ByteSize()
    if size > MAX_RUN_METADATA_BYTES:
        return (
            f"runner {target.address} returned run metadata of {size} bytes, "
            f"over the limit of {MAX_RUN_METADATA_BYTES} bytes; the job was "
            "asked to stop"
        )
    return None


def _stop_metadata(
    label: str, target: RunnerTarget, response: pb.RunnerServiceStopTrialResponse
) -> dict[str, Any]:
    """StopTrial's metadata without the fields JSON cannot hold (logged).

    The stop has happened on the runner whatever its metadata says, so bad
    fields are dropped, as fields over the size limit are, not refused.
    """
    read = read_metadata(response.run_metadata)
    if read.problems:
        logger.warning(
            "%s: runner %s returned stop metadata that is not JSON-representable "
            "(%s); those fields were dropped",
            label,
            target.address,
            read.describe_problems(),
        )
    return read.fields


def _has_final_objectives(config: ExperimentConfig, trial: TrialRecord) -> bool:
    final = {(o.arm_name, o.metric_name) for o in trial.observations if o.step is None}
    return all(
        (arm.name, objective) in final
        for arm in trial.arms
        for objective in config.objective_names
    )


def _as_domain_error(label: str, error: RunnerCallError) -> PolytrialError:
    """The domain error a failed runner call becomes when it reaches the caller."""
    message = f"{label}: {error}"
    if error.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(message, reason="RUNNER_DEADLINE_EXCEEDED")
    if error.busy:
        # Refused by our own in-flight cap: the runner was never called.
        return Unavailable(
            message, reason="RUNNER_BUSY", metadata={"runner": error.address}
        )
    if error.transient:
        return Unavailable(message, reason="RUNNER_UNAVAILABLE")
    return FailedPrecondition(message, reason="RUNNER_REFUSED")
