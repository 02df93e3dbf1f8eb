"""The generation lease: one suggestion at a time generates arms per experiment.

    suggest A: [lock row, take lease, commit] -- fit (no transaction) -- [lock row,
               check lease, store trials, free lease, commit]
    suggest B:        [lock row, lease held by A: commit] sleep ... [retry]

Suggestions on one experiment must take turns, across server replicas too, so
each sees the arms of the one before it as pending. The experiment row lock
alone did that for quick Sobol draws, but a model fit takes seconds, and a row
lock held that long keeps a transaction open (and, on SQLite, the single write
lock of the whole file). The lease is a token and an expiry on the experiment
row instead: taken and freed in short transactions, renewed while the fit runs,
and free again once it lapses after a crash, so a dead server blocks an
experiment's suggestions for at most `LEASE_S`.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

from polytrial.server.storage import ExperimentRecord

# A lease lapses this long after it was last taken or renewed. The holder
# renews it every `RENEW_EVERY_S`, so only a crashed or stalled server lets it
# lapse.
LEASE_S = 30.0
RENEW_EVERY_S = 10.0

# Waiting for another suggestion's lease: polls start quick (a Sobol turn
# takes milliseconds) and back off to a few per second (a fit takes seconds).
FIRST_POLL_S = 0.01
MAX_POLL_S = 0.25


def held_by_another(experiment: ExperimentRecord, token: str, now: datetime) -> bool:
    """Whether a suggestion other than `token`'s holds a live lease."""
    expire = experiment.generation_lease_expire_time
    return (
        bool(experiment.generation_lease)
        and experiment.generation_lease != token
        and expire is not None
        and expire > now
    )


def lease_expiry(now: datetime) -> datetime:
    """When a lease taken or renewed at `now` lapses."""
    return now + timedelta(seconds=LEASE_S)


class Backoff:
    """Sleeps between polls for a lease, doubling up to `MAX_POLL_S`.

    A little jitter keeps several waiters (on several replicas) from polling
    in step.
    """

    def __init__(self) -> None:
        self._next_s = FIRST_POLL_S

    def next_delay(self) -> float:
        """The next sleep in seconds (and doubles the one after)."""
        delay = self._next_s * random.uniform(0.75, 1.25)
        self._next_s = min(self._next_s * 2, MAX_POLL_S)
        return delay

    @staticmethod
    def sleep(delay_s: float) -> None:
        """Sleeps `delay_s` seconds."""
        time.sleep(delay_s)
