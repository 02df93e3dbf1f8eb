"""Calls to runner services: deadlines, bounded retries, a cap on calls in flight.

Every attempt of a call carries a deadline: the runner's `timeout_s` (10 s
when unset), cut to what is left of the caller's own deadline (`CallScope`).
UNAVAILABLE and DEADLINE_EXCEEDED are retried with exponential backoff and
jitter, `RetryPolicy.max_attempts` (3) attempts in all, and never past the
caller's deadline: without one, a call to a runner that never answers may
take up to about 3 x `timeout_s`. A retried Run carries the same deployment
key, so the runner starts its job at most once.

A runner that stops answering must not take the server with it: its calls
would hold the server's RPC threads until their deadlines. So at most
`max_in_flight_per_runner` calls to one address (and `max_in_flight` in all)
are in flight at once, and one more is refused at once, without calling the
runner: a `RunnerCallError` with RESOURCE_EXHAUSTED and no attempts, which the
RPC it was made for answers as UNAVAILABLE with reason RUNNER_BUSY and the
runner's address (`deployment.py`). A scope cancelled by its caller (the
RPC ended) cancels its runner calls, and `RunnerClient.close` (server
shutdown) cancels every call in flight and refuses new ones.

Any other status, or the last transient one, is raised as `RunnerCallError`,
which the deployment logic turns into a trial state or a domain error: this
module knows nothing of trials.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from polytrial.server.runners.channels import ChannelPool
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import runner_service_pb2_grpc as pb_grpc
from polytrial.v1 import values_pb2

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
# A server has 16 RPC threads by default: one hung runner may hold 4 of them,
# and every runner together (see `max_in_flight`) no more than the server says.
DEFAULT_MAX_IN_FLIGHT_PER_RUNNER = 4
RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)
# An attempt that would get less than this of the caller's deadline is not
# made: it could only time out.
_MIN_ATTEMPT_S = 0.05
_SHUTTING_DOWN = "the Polytrial server is shutting down"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    The n-th retry waits `min(max_backoff_s, initial_backoff_s * multiplier**(n-1))`
    scaled by a random factor in [0.5, 1] ("equal jitter"), so replicas that
    failed together do not retry in lockstep.

    Attributes:
        max_attempts: Calls in total, the first included.
        initial_backoff_s: Wait before the first retry, before jitter.
        max_backoff_s: Longest wait between attempts.
        multiplier: Growth of the wait per retry.
    """

    max_attempts: int = 3
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    multiplier: float = 2.0

    def backoff_s(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based), with jitter."""
        base = min(
            self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1)
        )
        return base * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class RunnerTarget:
    """Where a runner (or metric service) listens and how long a call may take."""

    address: str
    timeout_s: float = DEFAULT_TIMEOUT_S


class CallScope:
    """The deadline and cancellation of the work runner calls are made for.

    A handler makes one scope per RPC: its deadline is the RPC's, and the RPC
    ending (its caller cancelled, its deadline passed, the server stopped)
    cancels the scope, which cancels the runner calls in flight for it. Work
    of the server's own (the lost-trial sweep) makes one with a timeout.

    Args:
        deadline: `time.monotonic()` value past which no runner call may run;
            None for no limit beyond the runners' own timeouts.
    """

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        # Guards `_calls` and `reason`; never held during a call.
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._calls: set[grpc.Future] = set()
        self.reason = ""

    @classmethod
    def within(cls, timeout_s: float | None) -> CallScope:
        """A scope that ends `timeout_s` from now (None: no deadline)."""
        if timeout_s is None:
            return cls()
        return cls(time.monotonic() + timeout_s)

    @property
    def cancelled(self) -> bool:
        """Whether the scope was cancelled."""
        return self._cancelled.is_set()

    def remaining_s(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def cancel(self, reason: str = "the call was cancelled") -> None:
        """Cancels the runner calls in flight for this scope and any later one."""
        with self._lock:
            if self._cancelled.is_set():
                return
            self.reason = reason
            self._cancelled.set()
            calls, self._calls = list(self._calls), set()
        for call in calls:
            call.cancel()

    def wait(self, delay_s: float) -> bool:
        """Sleeps up to `delay_s`; returns True at once if the scope is cancelled."""
        return self._cancelled.wait(delay_s)

    @contextmanager
    def _tracking(self, call: grpc.Future) -> Iterator[None]:
        with self._lock:
            cancelled = self._cancelled.is_set()
            if not cancelled:
                self._calls.add(call)
        if cancelled:
            call.cancel()
        try:
            yield
        finally:
            with self._lock:
                self._calls.discard(call)


class RunnerCallError(Exception):
    """A runner call failed for good (after retries, when the code allowed them).

    Attributes:
        method: The RunnerService method, for example "Run".
        address: The runner's address.
        code: The last gRPC status code (CANCELLED when the server cancelled
            the call itself: its caller went away or the server is stopping).
        details: The runner's (or gRPC's, or our) message.
        attempts: Calls made (0 when none was: too many in flight, or
            cancelled before it started).
    """

    def __init__(
        self,
        method: str,
        address: str,
        code: grpc.StatusCode,
        details: str,
        attempts: int,
    ) -> None:
        self.method = method
        self.address = address
        self.code = code
        self.details = details
        self.attempts = attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        # A busy refusal reaches callers as UNAVAILABLE: naming another code
        # in its message would contradict the status it comes with.
        what = "not called (RUNNER_BUSY)" if self.busy else code.name
        super().__init__(
            f"runner {address} {method}: {what}: {details or 'no message'}{tries}"
        )

    @property
    def busy(self) -> bool:
        """Whether the server refused the call itself: too many in flight."""
        return self.code is grpc.StatusCode.RESOURCE_EXHAUSTED and self.attempts == 0

    @property
    def transient(self) -> bool:
        """Whether the failure may go away by itself (the runner was down or slow).

        A cancelled call is transient too: the runner did not refuse it, the
        server stopped waiting.
        """
        return self.code in RETRYABLE_CODES or self.code in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.CANCELLED,
        )

    @property
    def unimplemented(self) -> bool:
        """Whether the runner does not offer the method (an optional one)."""
        return self.code is grpc.StatusCode.UNIMPLEMENTED


class RunnerClient:
    """Calls RunnerService methods on any runner through a shared channel pool.

    Args:
        pool: The channels, one per address.
        policy: How transient failures are retried.
        sleep: Waits between attempts (tests may pass a faster one); by
            default a wait that a cancelled scope or `close` cuts short.
        max_in_flight_per_runner: Calls to one address at once; one more is
            refused with RESOURCE_EXHAUSTED and no attempts (the RPC answers
            UNAVAILABLE, reason RUNNER_BUSY).
        max_in_flight: Calls to all runners at once (None: no limit beyond
            the per-runner one); the server passes half its RPC threads.
    """

    def __init__(
        self,
        pool: ChannelPool | None = None,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        max_in_flight_per_runner: int = DEFAULT_MAX_IN_FLIGHT_PER_RUNNER,
        max_in_flight: int | None = None,
    ) -> None:
        if max_in_flight_per_runner < 1 or (
            max_in_flight is not None and max_in_flight < 1
        ):
            raise ValueError("in-flight limits must be at least 1")
        self.pool = pool or ChannelPool()
        self.policy = policy or RetryPolicy()
        self.max_in_flight_per_runner = max_in_flight_per_runner
        self.max_in_flight = max_in_flight
        self._sleep = sleep
        # Guards `_in_flight`, `_total`, `_scopes` and `_closed`; held only
        # to count, never during a call.
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._total = 0
        self._scopes: dict[CallScope, int] = {}
        self._closed = False

    def in_flight(self, address: str | None = None) -> int:
        """Calls in flight to `address`, or to every runner."""
        with self._lock:
            return self._total if address is None else self._in_flight.get(address, 0)

    def close(self) -> None:
        """Cancels every call in flight, refuses new ones and closes the channels."""
        with self._lock:
            self._closed = True
            scopes = list(self._scopes)
        for scope in scopes:
            scope.cancel(_SHUTTING_DOWN)
        self.pool.close()

    def staging_required(
        self, target: RunnerTarget, *, scope: CallScope | None = None
    ) -> bool:
        """Asks whether the runner's trials start STAGED.

        Raises:
            RunnerCallError: the call failed for good.
        """
        response = self._call(
            target,
            "StagingRequired",
            lambda stub: stub.StagingRequired,
            pb.StagingRequiredRequest(),
            scope,
        )
        return bool(response.staging_required)

    def run(
        self,
        target: RunnerTarget,
        trial: pb.RunnerTrial,
        deployment_key: str,
        *,
        scope: CallScope | None = None,
    ) -> pb.RunResponse:
        """Starts the trial's job; retries carry the same `deployment_key`.

        Raises:
            RunnerCallError: the call failed for good.
        """
        request = pb.RunRequest(trial=trial, deployment_key=deployment_key)
        response: pb.RunResponse = self._call(
            target, "Run", lambda stub: stub.Run, request, scope
        )
        return response

    def poll(
        self,
        target: RunnerTarget,
        trial: pb.RunnerTrial,
        *,
        scope: CallScope | None = None,
    ) -> pb.PollTrialStatusResponse:
        """Returns the runner's view of a deployed trial.

        Raises:
            RunnerCallError: the call failed for good (UNIMPLEMENTED included).
        """
        response: pb.PollTrialStatusResponse = self._call(
            target,
            "PollTrialStatus",
            lambda stub: stub.PollTrialStatus,
            pb.PollTrialStatusRequest(trial=trial),
            scope,
        )
        return response

    def stop(
        self,
        target: RunnerTarget,
        trial: pb.RunnerTrial,
        reason: str,
        *,
        scope: CallScope | None = None,
    ) -> pb.RunnerServiceStopTrialResponse:
        """Asks the runner to stop a deployed trial.

        Raises:
            RunnerCallError: the call failed for good (UNIMPLEMENTED included).
        """
        response: pb.RunnerServiceStopTrialResponse = self._call(
            target,
            "StopTrial",
            lambda stub: stub.StopTrial,
            pb.RunnerServiceStopTrialRequest(trial=trial, reason=reason),
            scope,
        )
        return response

    def fetch(
        self,
        target: RunnerTarget,
        trial: pb.RunnerTrial,
        metric_names: Sequence[str],
        *,
        scope: CallScope | None = None,
    ) -> list[values_pb2.Observation]:
        """Returns a deployed trial's observations of `metric_names`.

        Raises:
            RunnerCallError: the call failed for good (UNIMPLEMENTED included).
        """
        response: pb.FetchTrialDataResponse = self._call(
            target,
            "FetchTrialData",
            lambda stub: stub.FetchTrialData,
            pb.FetchTrialDataRequest(trial=trial, metric_names=list(metric_names)),
            scope,
        )
        return list(response.observations)

    # Plumbing --------------------------------------------------------------

    @contextmanager
    def _slot(self, target: RunnerTarget, method: str) -> Iterator[None]:
        """Holds one of the in-flight slots for a call to `target`.

        Raises:
            RunnerCallError: RESOURCE_EXHAUSTED with no attempts, the limit is
                reached (the RPC answers UNAVAILABLE, reason RUNNER_BUSY).
        """
        address = target.address
        with self._lock:
            count = self._in_flight.get(address, 0)
            full = count >= self.max_in_flight_per_runner
            total_full = self.max_in_flight is not None and (
                self._total >= self.max_in_flight
            )
            if not (full or total_full):
                self._in_flight[address] = count + 1
                self._total += 1
        if full or total_full:
            if full:
                details = (
                    f"{count} calls to this runner are in flight already, the "
                    "most the server allows per runner; it may be hung or "
                    "overloaded"
                )
            else:
                details = (
                    f"{self.max_in_flight} runner calls are in flight already, "
                    "the most the server allows at once"
                )
            logger.warning("runner %s %s refused: %s", address, method, details)
            raise RunnerCallError(
                method, address, grpc.StatusCode.RESOURCE_EXHAUSTED, details, 0
            )
        try:
            yield
        finally:
            with self._lock:
                remaining = self._in_flight[address] - 1
                if remaining:
                    self._in_flight[address] = remaining
                else:
                    del self._in_flight[address]
                self._total -= 1

    def _call(
        self,
        target: RunnerTarget,
        method: str,
        pick: Callable[[pb_grpc.RunnerServiceStub], Any],
        request: object,
        scope: CallScope | None,
    ) -> Any:
        """Calls `method` within the scope's deadline, retrying transient failures."""
        scope = scope or CallScope()
        with self._lock:
            closed = self._closed
            if not closed:
                self._scopes[scope] = self._scopes.get(scope, 0) + 1
        if closed:
            raise self._error(
                target, method, grpc.StatusCode.CANCELLED, _SHUTTING_DOWN, 0
            )
        try:
            with self._slot(target, method):
                return self._attempts(target, method, pick, request, scope)
        finally:
            with self._lock:
                users = self._scopes.pop(scope) - 1
                if users:
                    self._scopes[scope] = users

    def _attempts(
        self,
        target: RunnerTarget,
        method: str,
        pick: Callable[[pb_grpc.RunnerServiceStub], Any],
        request: object,
        scope: CallScope,
    ) -> Any:
        stub = pb_grpc.RunnerServiceStub(self.pool.get(target.address))
        attempts = self.policy.max_attempts
        last: RunnerCallError | None = None
        for attempt in range(1, attempts + 1):
            # Each attempt gets the runner's timeout, or what is left of the
            # caller's deadline if that is less.
            timeout_s = target.timeout_s
            remaining_s = scope.remaining_s()
            if remaining_s is not None:
                if remaining_s < _MIN_ATTEMPT_S:
                    raise last or self._error(
                        target,
                        method,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        "the caller's deadline passed before the runner was called",
                        attempt - 1,
                    )
                timeout_s = min(timeout_s, remaining_s)

            # One attempt, cancelled with its scope or with the whole client.
            started = time.monotonic()
            try:
                return self._attempt(pick(stub), request, timeout_s, scope)
            except _Cancelled as cancelled:
                raise self._error(
                    target,
                    method,
                    grpc.StatusCode.CANCELLED,
                    f"the call was cancelled: {cancelled.reason}",
                    attempt,
                ) from None
            except grpc.RpcError as exc:
                code = exc.code()
                details = exc.details() or ""
                # A server that notices the deadline first resets the stream,
                # which the client may report as CANCELLED; calls we cancel
                # ourselves raise `_Cancelled`, so this is the deadline too.
                elapsed_s = time.monotonic() - started
                late = elapsed_s >= 0.9 * timeout_s  # the header is rounded
                if code is grpc.StatusCode.CANCELLED and late:
                    code = grpc.StatusCode.DEADLINE_EXCEEDED
                last = RunnerCallError(method, target.address, code, details, attempt)
                last.__cause__ = exc
                if code not in RETRYABLE_CODES or attempt == attempts:
                    raise last from exc

            # A transient failure: wait, then try again with the same request,
            # unless the wait would outlast the caller's deadline.
            delay_s = self.policy.backoff_s(attempt)
            remaining_s = scope.remaining_s()
            if remaining_s is not None and remaining_s - delay_s < _MIN_ATTEMPT_S:
                raise last
            logger.warning(
                "runner %s %s attempt %d/%d failed with %s; retrying in %.2fs",
                target.address,
                method,
                attempt,
                attempts,
                code.name,
                delay_s,
            )
            if self._wait(delay_s, scope):
                raise self._error(
                    target,
                    method,
                    grpc.StatusCode.CANCELLED,
                    f"the call was cancelled: {scope.reason}",
                    attempt,
                )
        raise AssertionError("unreachable")  # the last attempt returns or raises

    @staticmethod
    def _attempt(rpc: Any, request: object, timeout_s: float, scope: CallScope) -> Any:
        """One call; raises `_Cancelled` if its scope is cancelled meanwhile."""
        call: grpc.Future = rpc.future(request, timeout=timeout_s)
        with scope._tracking(call):
            try:
                return call.result()
            except grpc.FutureCancelledError:
                raise _Cancelled(scope.reason) from None

    def _wait(self, delay_s: float, scope: CallScope) -> bool:
        """Waits between attempts; True when the scope was cancelled meanwhile."""
        if self._sleep is None:
            return scope.wait(delay_s)
        self._sleep(delay_s)
        return scope.cancelled

    @staticmethod
    def _error(
        target: RunnerTarget,
        method: str,
        code: grpc.StatusCode,
        details: str,
        attempts: int,
    ) -> RunnerCallError:
        return RunnerCallError(method, target.address, code, details, attempts)


class _Cancelled(Exception):
    """A call cancelled by its scope or by `RunnerClient.close`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
