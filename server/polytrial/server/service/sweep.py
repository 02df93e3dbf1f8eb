"""The periodic sweep that fails lost trials of every experiment.

Lost trials are also failed when their experiment is read or suggested from,
but an experiment nobody touches would keep a dead worker's trial RUNNING;
this sweep bounds that to about one interval. Every replica runs one. The
UPDATE re-checks status and expiry, so replicas sweeping at once fail each
trial exactly once, and a heartbeat that commits first keeps its trial.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from polytrial.server.storage import Database, Repository

logger = logging.getLogger(__name__)

DEFAULT_SWEEP_INTERVAL_S = 1.0


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
    """

    def __init__(
        self, db: Database, interval_s: float = DEFAULT_SWEEP_INTERVAL_S
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.db = db
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="polytrial-sweeper", daemon=True
        )

    def start(self) -> None:
        """Starts sweeping."""
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stops sweeping and waits for a sweep in progress to end."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                sweep_lost_trials(self.db)
            except Exception:
                # A database outage must not end the sweeper; the next
                # interval tries again.
                logger.exception("sweep of lost trials failed; retrying later")
