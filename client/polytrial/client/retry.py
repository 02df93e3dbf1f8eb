"""Retries of calls that are safe to repeat, with capped exponential backoff.

A call is safe to repeat when it only reads, or when it carries a request id
the server deduplicates (SuggestTrials, AttachTrial, CompleteTrial): the
client draws that id once per logical call and sends the same one on every
attempt, so a retry after a lost answer returns the first result instead of
acting twice. Only UNAVAILABLE and DEADLINE_EXCEEDED are retried; every other
answer is final.

By default a call is retried until its total time budget is spent (60 s), so
a client bridges a server restart; a server that starts slowly (a cold import
of the BO stack) can take tens of seconds to answer again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a call that is safe to repeat.

    The n-th wait (from 0) is drawn uniformly from [0, min(max_backoff_s,
    initial_backoff_s * multiplier**n)] ("full jitter"), so many clients that
    lost the server at once do not come back in step.

    Attributes:
        max_attempts: Attempts in all, the first one included; 1 disables
            retries; None (the default) retries until `total_timeout_s` is
            spent.
        initial_backoff_s: Cap of the first wait.
        max_backoff_s: Cap of every wait.
        multiplier: Growth of the cap per attempt.
        total_timeout_s: Time budget of all attempts and waits together; no
            attempt starts, and no attempt's deadline reaches, beyond it. The
            client widens it to one whole attempt when a call's own deadline is
            longer (a SuggestTrials attempt has `suggest_timeout_s`, 300 s by
            default), so the budget never cuts a first attempt short.
    """

    max_attempts: int | None = None
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    total_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff times must not be negative")
        if self.total_timeout_s <= 0:
            raise ValueError("total_timeout_s must be positive")

    def backoff_s(self, retry_number: int, rng: random.Random) -> float:
        """The wait before retry `retry_number` (0 for the first retry)."""
        try:
            grown = self.initial_backoff_s * self.multiplier**retry_number
        except OverflowError:  # a long budget's 1000th retry, say
            grown = self.max_backoff_s
        return rng.uniform(0.0, min(self.max_backoff_s, grown))


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that makes every call exactly once."""


def call_with_retry(
    attempt: Callable[[float], T],
    *,
    policy: RetryPolicy,
    timeout_s: float,
    method: str,
    request_id: str = "",
    rng: random.Random | None = None,
    total_timeout_s: float | None = None,
) -> T:
    """Runs `attempt(timeout_s)` until it succeeds, fails for good, or time is up.

    Args:
        attempt: Makes one call with the given per-attempt timeout in seconds.
        policy: The retry policy.
        timeout_s: Deadline of one attempt; shortened so that no attempt
            outlives the policy's total budget.
        method: The RPC's name, for the log.
        request_id: The request id sent on every attempt, for the log.
        rng: Source of jitter (a seeded one makes tests reproducible).
        total_timeout_s: Overrides the policy's total budget for this call
            (for calls whose single attempt may take longer).

    Returns:
        What the first successful attempt returned.

    Raises:
        grpc.RpcError: the last attempt's error, when it is not retryable, the
            attempts are used up, or the total budget is spent.
    """
    rng = rng or random.Random()
    budget_s = (
        total_timeout_s if total_timeout_s is not None else policy.total_timeout_s
    )
    give_up_at = time.monotonic() + budget_s
    attempts = policy.max_attempts
    retry_number = 0
    while True:
        remaining_s = give_up_at - time.monotonic()
        try:
            return attempt(max(0.001, min(timeout_s, remaining_s)))
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code not in RETRYABLE_CODES or (
                attempts is not None and retry_number + 1 >= attempts
            ):
                raise
            wait_s = policy.backoff_s(retry_number, rng)
            if time.monotonic() + wait_s >= give_up_at:
                raise
            retry_number += 1
            logger.warning(
                "%s answered %s (request id %r); retry %d of %s in %.2fs",
                method,
                code,
                request_id,
                retry_number,
                attempts - 1 if attempts is not None else f"{budget_s:g}s",
                wait_s,
            )
            time.sleep(wait_s)
