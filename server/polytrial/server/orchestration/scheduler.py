"""The background loop that ticks the orchestrations this replica may drive.

One thread looks for due orchestrations (RUNNING, next tick reached, lease
free, expired or its own) a few times a second and hands each to a small
pool of tick threads; one orchestration is never ticked twice at once here,
and the lease keeps other replicas off it. On stop the loop ends, ticks in
progress finish, and the leases are released so another replica resumes at
once instead of waiting for them to expire.

A tick that fails (a database outage, a bug) is retried after a wait that
doubles with each failure in a row, up to `MAX_RETRY_DELAY_S`; only the first
failure in a row is logged with its traceback, so a lasting fault neither
spins a thread nor floods the log.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent import futures
from datetime import UTC, datetime

from polytrial.server.orchestration import store
from polytrial.server.orchestration.driver import Driver
from polytrial.server.runners import Deployments
from polytrial.server.service import Trials
from polytrial.server.storage import Database, Repository

logger = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
DEFAULT_SCAN_INTERVAL_S = 0.25
DEFAULT_MAX_TICKS = 4
FIRST_RETRY_DELAY_S = 1.0
MAX_RETRY_DELAY_S = 30.0


def new_owner_token() -> str:
    """A lease token naming this replica: host, process id, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Orchestrator:
    """Drives this replica's share of the stored orchestrations.

    Args:
        db: The database.
        trials: The trial service (suggest goes through it).
        deployments: Deploys, refreshes and stops trials through runners.
        lease_s: How long a lease lasts without renewal; another replica
            takes an orchestration over this long after its driver died. It
            must exceed the longest step of a tick (a model fit, a runner
            call with its retries).
        scan_interval_s: Seconds between two looks for due orchestrations.
        max_ticks: Orchestrations ticked at once.
    """

    def __init__(
        self,
        db: Database,
        trials: Trials,
        deployments: Deployments,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        scan_interval_s: float = DEFAULT_SCAN_INTERVAL_S,
        max_ticks: int = DEFAULT_MAX_TICKS,
    ) -> None:
        if not lease_s > 0 or not scan_interval_s > 0 or max_ticks < 1:
            raise ValueError("lease_s and scan_interval_s must be positive")
        self.db = db
        self.owner = new_owner_token()
        self.driver = Driver(db, trials, deployments, self.owner, lease_s)
        self.scan_interval_s = scan_interval_s
        self._pool = futures.ThreadPoolExecutor(
            max_workers=max_ticks, thread_name_prefix="polytrial-orchestration"
        )
        # Experiments with a tick queued or running on this replica, and
        # those whose last ticks failed (failures in a row, and the
        # `time.monotonic()` before which no tick is tried); guarded by
        # `_lock` (the scan thread reads, tick threads write).
        self._busy: set[str] = set()
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="polytrial-orchestrator", daemon=True
        )

    def start(self) -> None:
        """Starts looking for orchestrations to drive."""
        self._thread.start()
        logger.info("orchestrator started as %s", self.owner)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stops ticking, waits for ticks in progress and releases the leases."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            released = self.db.run(lambda repo: store.release(repo, self.owner))
        except Exception:
            # The leases then simply expire; another replica waits that long.
            logger.exception("orchestrator %s could not release its leases", self.owner)
            return
        if released:
            logger.info(
                "orchestrator %s stopped; released %d orchestrations",
                self.owner,
                released,
            )

    def _loop(self) -> None:
        while not self._stopping.wait(self.scan_interval_s):
            try:
                due = self.db.run(self._due, write=False)
            except Exception:
                # A database outage must not end the loop; the next scan retries.
                logger.exception("looking for due orchestrations failed")
                continue
            for experiment_id in due:
                with self._lock:
                    if experiment_id in self._busy or self._backing_off(experiment_id):
                        continue
                    self._busy.add(experiment_id)
                try:
                    self._pool.submit(self._tick, experiment_id)
                except RuntimeError:  # the pool shut down under us
                    return

    def _due(self, repo: Repository) -> list[str]:
        return store.due(repo, self.owner, datetime.now(UTC))

    def _backing_off(self, experiment_id: str) -> bool:
        """Whether the experiment's last tick failed too recently (hold `_lock`)."""
        _, retry_at = self._failures.get(experiment_id, (0, 0.0))
        return time.monotonic() < retry_at

    def _tick(self, experiment_id: str) -> None:
        try:
            if not self._stopping.is_set():
                self.driver.tick(experiment_id)
        except Exception as error:
            self._tick_failed(experiment_id, error)
        else:
            with self._lock:
                self._failures.pop(experiment_id, None)
        finally:
            with self._lock:
                self._busy.discard(experiment_id)

    def _tick_failed(self, experiment_id: str, error: Exception) -> None:
        """Logs a failed tick and delays the next; see the module docstring."""
        with self._lock:
            count = self._failures.get(experiment_id, (0, 0.0))[0] + 1
            delay_s = min(MAX_RETRY_DELAY_S, FIRST_RETRY_DELAY_S * 2 ** (count - 1))
            self._failures[experiment_id] = (count, time.monotonic() + delay_s)
        if count == 1:
            logger.exception(
                "experiment %s: orchestration tick failed; retrying in %.0fs",
                experiment_id,
                delay_s,
            )
        else:
            logger.warning(
                "experiment %s: orchestration tick failed again (%d in a row), "
                "retrying in %.0fs: %r",
                experiment_id,
                count,
                delay_s,
                error,
            )
