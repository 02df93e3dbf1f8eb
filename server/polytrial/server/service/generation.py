"""The bounded pool where model-based generations run, off the RPC threads.

    suggest (RPC thread)
        engine.uses_model? no  -> engine.generate inline, in the transaction
                                  (Sobol, sub-millisecond)
                           yes -> GenerationPool: queue for one of N slots,
                                  fit and acquire on a pool thread; the RPC
                                  thread holds the experiment's generation
                                  lease (no transaction), renews it while it
                                  waits, and waits at most the call's
                                  remaining deadline, then stores nothing

The limit bounds how many model fits a server process runs at once, so a burst
of suggests on many experiments cannot take every core (or every RPC thread)
from the calls that only read or record data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import TypeVar

from polytrial.server import engine
from polytrial.server.engine.types import GenerationRequest, GenerationResult
from polytrial.server.errors import DeadlineExceeded, Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_CONCURRENT_GENERATIONS = 2
# A generation that waited longer than this for a slot is logged at WARNING:
# the limit is then too low for the load (or a fit is unusually slow).
SLOW_QUEUE_WAIT_S = 5.0


def no_deadline() -> float | None:
    """The default remaining-time source: the caller waits as long as it takes."""
    return None


class GenerationPool:
    """Runs model-based generations on at most `max_concurrent` threads.

    Args:
        max_concurrent: Generations that may run at the same time; more wait
            in order of arrival.
        slow_wait_s: A wait for a slot longer than this is logged at WARNING
            (shorter ones at DEBUG).

    Attributes:
        max_concurrent: The limit.

    Raises:
        ValueError: `max_concurrent` is below 1.
    """

    def __init__(
        self,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT_GENERATIONS,
        *,
        slow_wait_s: float = SLOW_QUEUE_WAIT_S,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self._slow_wait_s = slow_wait_s
        self._executor = futures.ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="polytrial-generate"
        )
        # Guards `_waiting`, which submitting and starting threads both change.
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Jobs queued for a slot right now."""
        with self._lock:
            return self._waiting

    def generate(
        self,
        request: GenerationRequest,
        *,
        experiment_id: str,
        time_remaining: Callable[[], float | None] = no_deadline,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_every_s: float = 10.0,
    ) -> GenerationResult:
        """Runs `engine.generate(request)`: in the pool when it fits a model.

        A pooled generation's record gains `queue_wait_s` (seconds spent
        waiting for a slot) and `generation_start_unix_s` /
        `generation_end_unix_s` (when it held the slot).

        Args:
            request: The engine request.
            experiment_id: For the log lines.
            time_remaining: Seconds the caller still waits (None: no limit),
                read once when the generation is queued.
            heartbeat: Called every `heartbeat_every_s` while the caller
                waits (the suggest path renews its lease with it); what it
                raises ends the wait and is raised here.
            heartbeat_every_s: Seconds between heartbeats.

        Raises:
            DeadlineExceeded: the caller's time ran out before the generation
                finished (DEADLINE_EXCEEDED); its result is discarded.
            Unavailable: the server stopped while the generation was queued
                (UNAVAILABLE).
            The engine's own errors (see `engine.generate`).
        """
        if not engine.uses_model(request):
            return engine.generate(request)

        def work() -> GenerationResult:
            started = time.time()
            result = engine.generate(request)
            result.details["generation_start_unix_s"] = round(started, 6)
            result.details["generation_end_unix_s"] = round(time.time(), 6)
            return result

        result, queue_wait_s = self.run(
            work,
            what=f"experiment {experiment_id} generation",
            timeout_s=time_remaining(),
            heartbeat=heartbeat,
            heartbeat_every_s=heartbeat_every_s,
        )
        result.details["queue_wait_s"] = round(queue_wait_s, 4)
        return result

    def run(
        self,
        work: Callable[[], T],
        *,
        what: str,
        timeout_s: float | None = None,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_every_s: float = 10.0,
    ) -> tuple[T, float]:
        """Runs `work` in a slot and waits up to `timeout_s` for its result.

        Args:
            work: The job; its exceptions are re-raised here.
            what: Names the job in log lines and errors.
            timeout_s: Seconds to wait in all (None: no limit).
            heartbeat: Called every `heartbeat_every_s` of waiting; an
                exception from it abandons the job (as a deadline does) and
                is raised here.
            heartbeat_every_s: Seconds between heartbeats.

        Returns:
            The job's result and the seconds it waited for a slot.

        Raises:
            DeadlineExceeded: `timeout_s` passed first (DEADLINE_EXCEEDED). A
                queued job is then dropped; a running one finishes in its slot
                and its result is discarded, because a thread cannot be
                stopped from outside.
            Unavailable: the pool was shut down before the job ran
                (UNAVAILABLE).
        """
        if timeout_s is not None and timeout_s >= threading.TIMEOUT_MAX:
            # A call without a deadline reports an enormous time remaining,
            # which a thread wait refuses (OverflowError): it means no limit.
            timeout_s = None
        queued = time.monotonic()
        waited: list[float] = []
        started = threading.Event()

        def timed() -> T:
            with self._lock:
                self._waiting -= 1
            wait_s = time.monotonic() - queued
            waited.append(wait_s)
            started.set()
            log = logger.warning if wait_s > self._slow_wait_s else logger.debug
            log(
                "%s waited %.3f s for one of %d generation slots",
                what,
                wait_s,
                self.max_concurrent,
            )
            return work()

        with self._lock:
            try:
                future = self._executor.submit(timed)
            except RuntimeError as error:
                raise Unavailable(f"{what}: the server is shutting down") from error
            self._waiting += 1
        try:
            result = self._wait(future, timeout_s, heartbeat, heartbeat_every_s)
            return result, waited[0]
        except futures.TimeoutError as error:
            if future.cancel():
                with self._lock:
                    self._waiting -= 1
            state = "running" if started.is_set() else "queued"
            logger.info(
                "%s: the call's deadline passed while it was %s; nothing stored",
                what,
                state,
            )
            raise DeadlineExceeded(
                f"{what}: the call's deadline passed while the generation was "
                f"{state}; nothing was stored",
                reason="CALL_ENDED",
            ) from error
        except futures.CancelledError as error:
            with self._lock:
                self._waiting -= 1
            raise Unavailable(f"{what}: the server is shutting down") from error

    def _wait(
        self,
        future: futures.Future[T],
        timeout_s: float | None,
        heartbeat: Callable[[], None] | None,
        heartbeat_every_s: float,
    ) -> T:
        """Waits for `future` up to `timeout_s`, calling `heartbeat` between slices.

        Raises:
            futures.TimeoutError: `timeout_s` passed first.
            Whatever `heartbeat` raises (the job is then cancelled if queued).
        """
        if heartbeat is None:
            return future.result(timeout=timeout_s)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            slice_s = heartbeat_every_s
            if deadline is not None:
                slice_s = min(slice_s, max(deadline - time.monotonic(), 0.0))
            try:
                return future.result(timeout=slice_s)
            except futures.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            try:
                heartbeat()
            except BaseException:
                if future.cancel():
                    with self._lock:
                        self._waiting -= 1
                raise

    def shutdown(self) -> None:
        """Drops queued generations and waits for the running ones to end."""
        self._executor.shutdown(wait=True, cancel_futures=True)
