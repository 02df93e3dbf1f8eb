"""The periodic sweep that fails lost trials, and stops their runner jobs.

Lost trials are also failed when their experiment is read or suggested from,
but an experiment nobody touches would keep a dead worker's trial RUNNING;
this sweep bounds that to about one interval. Every replica runs one. The
UPDATE re-checks status and expiry, so replicas sweeping at once fail each
trial exactly once, and a heartbeat that commits first keeps its trial.

A trial deployed through a runner has a job there that nobody will read once
the trial is failed, so the replica that failed it asks the runner to stop
the job: best effort, after the transaction, on a small pool of its own so a
slow runner never delays the next sweep.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from concurrent import futures
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from polytrial.server.storage import LOST_REASON, Database, Repository

if TYPE_CHECKING:
    from polytrial.server.runners import Deployments, RunnerClient

logger = logging.getLogger(__name__)

DEFAULT_SWEEP_INTERVAL_S = 1.0
# How long the stop of one lost trial's job may take, retries included.
LOST_STOP_TIMEOUT_S = 30.0


def sweep_lost_trials(db: Database) -> list[tuple[str, int]]:
    """Fails every RUNNING trial whose time-to-live ran out; returns them.

    The check is a read, so an idle SQLite database is not write-locked once
    a second for nothing.
    """
    now = datetime.now(UTC)
    if not db.run(lambda repo: repo.has_expired_trials(now=now), write=False):
        return []

    def work(repo: Repository) -> list[tuple[str, int]]:
        return repo.fail_all_expired_trials(now=now)

    failed = db.run(work)
    for experiment_id, index in failed:
        logger.info(
            "experiment %s trial %d failed: lost (time-to-live ran out)",
            experiment_id,
            index,
        )
    return failed


class LostTrialSweeper:
    """A daemon thread running `sweep_lost_trials` every `interval_s`.

    Args:
        db: The database.
        interval_s: Seconds between sweeps.
        runner_client: Stops the runner jobs of the trials a sweep fails;
            None leaves them running.
    """

    def __init__(
        self,
        db: Database,
        interval_s: float = DEFAULT_SWEEP_INTERVAL_S,
        *,
        runner_client: RunnerClient | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.db = db
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="polytrial-sweeper", daemon=True
        )
        self._deployments: Deployments | None = None
        if runner_client is not None:
            # Imported here: the runners package imports this one's siblings.
            from polytrial.server.runners import Deployments

            self._deployments = Deployments(db, runner_client)
        self._stops = futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="polytrial-lost-stop"
        )

    def start(self) -> None:
        """Starts sweeping."""
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stops sweeping and waits for a sweep in progress to end.

        Stops of lost trials' jobs not started yet are dropped; one in flight
        ends when the runner client is closed (the server closes it).
        """
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._stops.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                failed = sweep_lost_trials(self.db)
            except Exception:
                # A database outage must not end the sweeper; the next
                # interval tries again.
                logger.exception("sweep of lost trials failed; retrying later")
                continue
            for experiment_id, index in failed:
                self._stop_job(experiment_id, index)

    def stop_jobs(self, experiment_id: str, indices: Sequence[int]) -> None:
        """Queues the stops of runner jobs of trials found lost outside a sweep."""
        for index in indices:
            self._stop_job(experiment_id, index)

    def _stop_job(self, experiment_id: str, index: int) -> None:
        """Queues the stop of a lost trial's runner job, if it has one."""
        deployments = self._deployments
        if deployments is None or self._stopping.is_set():
            return

        from polytrial.server.runners import CallScope

        def stop() -> None:
            try:
                deployments.stop_lost(
                    experiment_id,
                    index,
                    LOST_REASON,
                    scope=CallScope.within(LOST_STOP_TIMEOUT_S),
                )
            except Exception:
                logger.exception(
                    "stopping the runner job of lost trial %d of experiment %s failed",
                    index,
                    experiment_id,
                )

        # Submitting fails once the sweeper stops: the stop is dropped then,
        # as `stop` says.
        with contextlib.suppress(RuntimeError):
            self._stops.submit(stop)
