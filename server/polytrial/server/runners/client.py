"""Calls to runner services: deadlines, bounded retries with backoff, errors.

Every call carries a deadline (the runner's `timeout_s`, 10 s when unset).
UNAVAILABLE and DEADLINE_EXCEEDED are retried a bounded number of times with
exponential backoff and jitter; a retried Run carries the same deployment key,
so the runner starts its job at most once. Any other status, or the last
transient one, is raised as `RunnerCallError`, which the deployment logic turns
into a trial state or a domain error: this module knows nothing of trials.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from polytrial.server.runners.channels import ChannelPool
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import runner_service_pb2_grpc as pb_grpc
from polytrial.v1 import values_pb2

logger = logging.getLogger(__name__)

_Response = TypeVar("_Response")

DEFAULT_TIMEOUT_S = 10.0
RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


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


class RunnerCallError(Exception):
    """A runner call failed for good (after retries, when the code allowed them).

    Attributes:
        method: The RunnerService method, for example "Run".
        address: The runner's address.
        code: The last gRPC status code.
        details: The runner's (or gRPC's) message.
        attempts: Calls made.
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
        super().__init__(
            f"runner {address} {method}: {code.name}: {details or 'no message'}{tries}"
        )

    @property
    def transient(self) -> bool:
        """Whether the failure may go away by itself (the runner was down or slow)."""
        return self.code in RETRYABLE_CODES or self.code in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.ABORTED,
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
        sleep: Waits between attempts (tests may pass a faster one).
    """

    def __init__(
        self,
        pool: ChannelPool | None = None,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pool = pool or ChannelPool()
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    def staging_required(self, target: RunnerTarget) -> bool:
        """Asks whether the runner's trials start STAGED.

        Raises:
            RunnerCallError: the call failed for good.
        """
        response = self._call(
            target,
            "StagingRequired",
            lambda stub: stub.StagingRequired,
            pb.StagingRequiredRequest(),
        )
        return bool(response.staging_required)

    def run(
        self, target: RunnerTarget, trial: pb.RunnerTrial, deployment_key: str
    ) -> pb.RunResponse:
        """Starts the trial's job; retries carry the same `deployment_key`.

        Raises:
            RunnerCallError: the call failed for good.
        """
        request = pb.RunRequest(trial=trial, deployment_key=deployment_key)
        response: pb.RunResponse = self._call(
            target, "Run", lambda stub: stub.Run, request
        )
        return response

    def poll(
        self, target: RunnerTarget, trial: pb.RunnerTrial
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
        )
        return response

    def stop(
        self, target: RunnerTarget, trial: pb.RunnerTrial, reason: str
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
        )
        return response

    def fetch(
        self,
        target: RunnerTarget,
        trial: pb.RunnerTrial,
        metric_names: Sequence[str],
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
        )
        return list(response.observations)

    def _call(
        self,
        target: RunnerTarget,
        method: str,
        pick: Callable[[pb_grpc.RunnerServiceStub], Callable[..., _Response]],
        request: object,
    ) -> _Response:
        """Calls `method` with a deadline, retrying transient failures."""
        stub = pb_grpc.RunnerServiceStub(self.pool.get(target.address))
        attempts = self.policy.max_attempts
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                return pick(stub)(request, timeout=target.timeout_s)
            except grpc.RpcError as exc:
                code = exc.code()
                details = exc.details() or ""
                # A server that notices the deadline first resets the stream,
                # which the client may report as CANCELLED; we never cancel
                # calls ourselves, so that is the deadline too.
                elapsed_s = time.monotonic() - started
                late = elapsed_s >= 0.9 * target.timeout_s  # the header is rounded
                if code is grpc.StatusCode.CANCELLED and late:
                    code = grpc.StatusCode.DEADLINE_EXCEEDED
                if code not in RETRYABLE_CODES or attempt == attempts:
                    raise RunnerCallError(
                        method, target.address, code, details, attempt
                    ) from exc

            # A transient failure: wait, then try again with the same request.
            delay_s = self.policy.backoff_s(attempt)
            logger.warning(
                "runner %s %s attempt %d/%d failed with %s; retrying in %.2fs",
                target.address,
                method,
                attempt,
                attempts,
                code.name,
                delay_s,
            )
            self._sleep(delay_s)
        raise AssertionError("unreachable")  # the last attempt returns or raises
