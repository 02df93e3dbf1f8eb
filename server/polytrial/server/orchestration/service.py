"""Start, get and stop orchestrations: what the gRPC handlers call.

A start is checked whole before anything is stored: the options (every bad
field named), the request id, and the experiment (it exists, has a runner,
and takes each objective from a runner or a metric service, since a trial
whose objective only a client reports could never complete here). A RUNNING
orchestration is not replaced (FAILED_PRECONDITION, reason
ORCHESTRATION_RUNNING); a finished one is. A start that repeats the request
id and the options of the stored orchestration returns that one, whatever
its state; the same id with other options is INVALID_ARGUMENT (reason
REQUEST_ID_REUSED), as for SuggestTrials. Options are compared with their
defaults filled in, so leaving an option out and sending its default are the
same request.

Nor is the experiment of a RUNNING orchestration deleted
(`refuse_delete_while_running`, the same reason): a delete would leave the
runner jobs of its trials in flight going, where a stop ends them.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from polytrial.server import resources
from polytrial.server.errors import FailedPrecondition, InvalidArgument, NotFound
from polytrial.server.orchestration import store
from polytrial.server.orchestration.driver import read_counts, stop_trials
from polytrial.server.orchestration.options import Options
from polytrial.server.orchestration.store import OrchestrationRecord, State
from polytrial.server.runners import Deployments
from polytrial.server.service import ExperimentConfig, Trials, lifecycle, load_config
from polytrial.server.storage import Database, Repository, TrialStatus
from polytrial.v1 import experiment_pb2

logger = logging.getLogger(__name__)

MAX_REQUEST_ID_LENGTH = 255
_FETCHED = (
    experiment_pb2.METRIC_SOURCE_KIND_RUNNER,
    experiment_pb2.METRIC_SOURCE_KIND_SERVICE,
)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OrchestrationView:
    """An orchestration with the counts of its trials by status."""

    record: OrchestrationRecord
    counts: Counter[TrialStatus]


class Orchestrations:
    """Starts, reads and stops orchestrations.

    Args:
        db: The database.
        trials: The trial service (abandons CANDIDATE trials on stop).
        deployments: Stops deployed trials through their runners.
    """

    def __init__(self, db: Database, trials: Trials, deployments: Deployments):
        self.db = db
        self.trials = trials
        self.deployments = deployments

    def get(self, experiment_id: str) -> OrchestrationView:
        """Returns the experiment's orchestration.

        Raises:
            NotFound: no such experiment, or it was never orchestrated
                (NOT_FOUND).
        """
        return self.db.run(lambda repo: self._view(repo, experiment_id), write=False)

    def start(
        self, experiment_id: str, options: Options, *, request_id: str = ""
    ) -> OrchestrationView:
        """Starts orchestrating the experiment (see the module rules).

        Args:
            experiment_id: The experiment.
            options: Checked options (`options.check_options`).
            request_id: Idempotency key of the start.

        Raises:
            InvalidArgument: the request id is too long (INVALID_ARGUMENT,
                reason LIMIT_EXCEEDED), or it started this experiment's
                orchestration with other options (INVALID_ARGUMENT, reason
                REQUEST_ID_REUSED).
            NotFound: no such experiment (NOT_FOUND).
            FailedPrecondition: no runner, an objective without a runner or
                service source, or an orchestration RUNNING
                (FAILED_PRECONDITION).
        """
        if len(request_id) > MAX_REQUEST_ID_LENGTH:
            raise InvalidArgument(
                f"request_id has {len(request_id)} characters; at most "
                f"{MAX_REQUEST_ID_LENGTH} are allowed",
                field="request_id",
                reason="LIMIT_EXCEEDED",
            )

        def work(repo: Repository) -> tuple[OrchestrationView, bool]:
            # The experiment row lock serializes two starts on one experiment
            # (across replicas too): the second sees the first's orchestration.
            experiment = repo.get_experiment(
                experiment_id, for_update=True, with_counts=False
            )
            _check_experiment(experiment_id, load_config(experiment))
            existing = store.load(repo, experiment_id, for_update=True)
            if existing is not None and request_id == existing.request_id != "":
                _check_same_request(existing, options)
                # A retried start: its orchestration, even if it ended since.
                return self._view(repo, experiment_id), False
            if existing is not None and existing.state is State.RUNNING:
                raise FailedPrecondition(
                    f"{existing.name} is RUNNING (started "
                    f"{existing.create_time}); stop it before starting another",
                    reason="ORCHESTRATION_RUNNING",
                    metadata={"orchestration": existing.name},
                )
            now = _now()
            record = OrchestrationRecord(
                experiment_id=experiment_id,
                experiment_pk=store.experiment_pk(repo, experiment_id),
                uid=str(uuid.uuid4()),
                options=options,
                state=State.RUNNING,
                request_id=request_id,
                next_tick_time=now,
                create_time=now,
                update_time=now,
            )
            store.replace(repo, record)
            return OrchestrationView(record, Counter()), True

        view, started = self.db.run(work)
        if started:
            logger.info(
                "experiment %s: orchestration %s started: %s",
                experiment_id,
                view.record.uid,
                options,
            )
        return view

    def stop(self, experiment_id: str, reason: str = "") -> OrchestrationView:
        """Stops a RUNNING orchestration and its trials in flight, best effort.

        A finished orchestration is returned unchanged.

        Raises:
            InvalidArgument: the reason is too long (INVALID_ARGUMENT).
            NotFound: no such experiment or orchestration (NOT_FOUND).
        """
        lifecycle.check_reason(reason)
        message = reason or "stopped by StopOrchestration"

        def work(repo: Repository) -> tuple[OrchestrationRecord, bool]:
            record = _require(
                store.load(repo, experiment_id, for_update=True), experiment_id
            )
            if record.state is not State.RUNNING:
                return record, False
            now = _now()
            record.state, record.state_message = State.STOPPED, message
            record.end_time = record.update_time = now
            record.lease_owner, record.lease_expire_time = "", None
            store.replace(repo, record)
            return record, True

        record, stopped = self.db.run(work)
        if stopped:
            logger.info(
                "experiment %s: orchestration %s stopped: %s",
                experiment_id,
                record.uid,
                message,
            )
            # Outside any transaction: these call runners.
            stop_trials(self.db, self.trials, self.deployments, record, message)
        return self.get(experiment_id)

    def _view(self, repo: Repository, experiment_id: str) -> OrchestrationView:
        record = _require(store.load(repo, experiment_id), experiment_id)
        return OrchestrationView(record, read_counts(repo, record))


def refuse_delete_while_running(repo: Repository, experiment_id: str) -> None:
    """Refuses to delete an experiment whose orchestration is RUNNING.

    The delete would take the orchestration with it, and nothing would stop
    the runner jobs of its trials in flight; StopOrchestration does. Called
    by DeleteExperiment inside its transaction, after the experiment's row
    is locked, which a StartOrchestration also waits for.

    Raises:
        FailedPrecondition: the orchestration is RUNNING (FAILED_PRECONDITION,
            reason ORCHESTRATION_RUNNING, metadata "orchestration").
    """
    record = store.load(repo, experiment_id)
    if record is None or record.state is not State.RUNNING:
        return
    raise FailedPrecondition(
        f"{record.name} is RUNNING: stop it first with StopOrchestration, which "
        "also stops its trials in flight on the runner, then delete "
        f"{resources.experiment_name(experiment_id)}",
        reason="ORCHESTRATION_RUNNING",
        metadata={"orchestration": record.name},
    )


def _require(
    record: OrchestrationRecord | None, experiment_id: str
) -> OrchestrationRecord:
    if record is None:
        name = resources.orchestration_name(experiment_id)
        raise NotFound(
            name, f"{name} does not exist: the experiment was never orchestrated"
        )
    return record


def _check_same_request(existing: OrchestrationRecord, options: Options) -> None:
    """Refuses a start that reuses the stored start's request id for other options.

    The stored options are the first request's, defaults filled in, so they
    serve as its fingerprint: no separate digest is needed.
    """
    if existing.options == options:
        return
    changed = [
        name
        for name, value in options.to_json().items()
        if existing.options.to_json().get(name) != value
    ]
    raise InvalidArgument(
        f"request_id {existing.request_id!r} was already used to start "
        f"{existing.name} with other options (differing: "
        f"{', '.join(changed)}); use a new id for a new request",
        field="request_id",
        reason="REQUEST_ID_REUSED",
    )


def _check_experiment(experiment_id: str, config: ExperimentConfig) -> None:
    """Refuses an experiment whose trials an orchestration could not run."""
    name = resources.experiment_name(experiment_id)
    if not config.has_runner:
        raise FailedPrecondition(
            f"{name} has no runner: an orchestration deploys trials through the "
            "experiment's runner (set Experiment.runner)",
            reason="NO_RUNNER",
            metadata={"experiment": name},
        )
    fetched = {
        source.metric_name
        for source in config.message.metric_sources
        if source.kind in _FETCHED
    }
    for objective in config.objective_names:
        if objective not in fetched:
            raise FailedPrecondition(
                f"{name}: objective {objective!r} has no metric source of kind "
                "RUNNER or SERVICE, so no trial of an orchestration could ever "
                "complete (add it to Experiment.metric_sources)",
                reason="NO_METRIC_SOURCE",
                metadata={"experiment": name, "metric": objective},
            )
