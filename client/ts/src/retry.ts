/**
 * Retries of calls that are safe to repeat, with capped exponential backoff.
 *
 * A call is safe to repeat when it only reads, or when it carries a request id
 * the server deduplicates (SuggestTrials, AttachTrial, CompleteTrial): the
 * client draws that id once per logical call and sends the same one on every
 * attempt, so a retry after a lost answer returns the first result instead of
 * acting twice. Only UNAVAILABLE and DEADLINE_EXCEEDED are retried; every
 * other answer is final.
 *
 * By default a call is retried until its total time budget is spent (60 s),
 * as in the Python client, so a client bridges a server restart; a server
 * that starts slowly (a cold import of the BO stack) can take tens of seconds
 * to answer again.
 */

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import { status } from "@grpc/grpc-js";

import { isServiceError } from "./errors";

/**
 * How often and how long to retry. The n-th wait (from 0) is drawn uniformly
 * from [0, min(maxBackoffMs, initialBackoffMs * multiplier^n)] ("full
 * jitter"), so many clients that lost the server at once do not come back in
 * step.
 */
export interface RetryPolicy {
  /**
   * Attempts in all, the first included; 1 disables retries. Unset (the
   * default) retries until `totalTimeoutMs` is spent.
   */
  readonly maxAttempts?: number;
  /** Cap of the first wait. */
  readonly initialBackoffMs: number;
  /** Cap of every wait. */
  readonly maxBackoffMs: number;
  /** Growth of the cap per attempt. */
  readonly multiplier: number;
  /**
   * Budget of all attempts and waits together; no attempt starts, and no
   * attempt's deadline reaches, beyond it. A call whose attempt deadline is
   * longer (SuggestTrials, 300 s by default) gets that deadline as its budget
   * instead, as in the Python client, so its first attempt is never cut short.
   */
  readonly totalTimeoutMs: number;
}

/** The policy of a client given no other. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialBackoffMs: 100,
  maxBackoffMs: 5000,
  multiplier: 2,
  totalTimeoutMs: 60_000,
};

/** A policy that makes every call exactly once. */
export const NO_RETRY: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 };

/** The wait before retry `retry` (0 for the first retry), in milliseconds. */
export function backoffMs(policy: RetryPolicy, retry: number): number {
  const cap = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** retry);
  return Math.random() * Math.max(0, cap);
}

/** A random version-4 UUID: the idempotency key of a logical call. */
export function newRequestId(): string {
  return randomUUID();
}

function retryable(error: unknown): boolean {
  return (
    isServiceError(error) && (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED)
  );
}

/**
 * Runs `attempt(deadline)` until it succeeds, fails for good, or time is up;
 * each attempt's deadline is `timeoutMs` from its start, cut to the budget.
 * The budget is the policy's `totalTimeoutMs`, or `timeoutMs` when that is
 * longer: a 300 s SuggestTrials attempt under the default 60 s budget would
 * otherwise end at 60 s. Rethrows the last attempt's error as it came.
 */
export async function callWithRetry<T>(
  attempt: (deadline: Date) => Promise<T>,
  policy: RetryPolicy,
  timeoutMs: number,
  onRetry?: (error: unknown, retry: number, waitMs: number) => void,
): Promise<T> {
  // An infinite timeoutMs (the client accepts one) does not grow the budget:
  // grpc-js cannot send an infinite deadline, so such attempts end with it.
  const giveUpAt = Date.now() + Math.max(policy.totalTimeoutMs, Number.isFinite(timeoutMs) ? timeoutMs : 0);
  for (let retry = 0; ; retry++) {
    try {
      return await attempt(new Date(Math.min(Date.now() + timeoutMs, giveUpAt)));
    } catch (error) {
      const attemptsLeft = policy.maxAttempts === undefined || retry + 1 < policy.maxAttempts;
      if (!retryable(error) || !attemptsLeft) throw error;
      const waitMs = backoffMs(policy, retry);
      if (Date.now() + waitMs >= giveUpAt) throw error;
      onRetry?.(error, retry + 1, waitMs);
      await sleep(waitMs);
    }
  }
}
