"""The `Runner` base class: what a runner implements to deploy trials.

Only `run` is required. `staging_required` defaults to False; `poll`, `stop` and
`fetch_data` are optional and answer UNIMPLEMENTED until overridden, which the
server copes with (a trial whose runner cannot be polled is completed by its
client instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from polytrial.runner.errors import NotSupported
from polytrial.runner.types import Observation, Trial, TrialStatus


class Runner:
    """Deploys trials on some external system; subclass it and override `run`.

    Attributes:
        staging_required: Whether deployed trials start STAGED (waiting for a
            staging period) rather than RUNNING.
    """

    staging_required: bool = False

    def run(self, trial: Trial, deployment_key: str) -> Mapping[str, Any]:
        """Starts the trial's job and returns its metadata at once.

        The SDK remembers `deployment_key` and answers a repeated Run with the
        first answer, so this method is called once per key even when the
        server retries. A string under "name" becomes the trial's deployed name.

        Args:
            trial: The trial to deploy; its `run_metadata` is empty.
            deployment_key: Unique key of this deployment, for the runner's own
                bookkeeping (for example as an idempotency key downstream).

        Returns:
            JSON-able metadata; the server stores it and sends it back with every
            later call about this trial.

        Raises:
            InvalidTrial: the trial cannot be run (INVALID_ARGUMENT; the server
                marks it FAILED).
            TrialRefused: the external system refuses it (FAILED_PRECONDITION;
                FAILED as well).
            Unavailable: the external system is down (UNAVAILABLE; retried).
        """
        raise NotImplementedError

    def poll(self, trial: Trial) -> TrialStatus:
        """Returns the external system's view of a deployed trial.

        Raises:
            NotSupported: unless overridden (UNIMPLEMENTED).
            TrialNotFound: no job for the trial (NOT_FOUND).
        """
        raise NotSupported("this runner does not poll trials")

    def stop(self, trial: Trial, reason: str) -> Mapping[str, Any] | None:
        """Stops a deployed trial; returns metadata to merge into the trial's.

        Raises:
            NotSupported: unless overridden (UNIMPLEMENTED).
            TrialNotFound: no job for the trial (NOT_FOUND).
        """
        raise NotSupported("this runner does not stop trials")

    def fetch_data(
        self, trial: Trial, metric_names: Sequence[str]
    ) -> Sequence[Observation]:
        """Returns observations of a deployed trial, final or intermediate.

        Args:
            trial: The deployed trial.
            metric_names: Only these metrics; empty means every metric the
                runner has.

        Raises:
            NotSupported: unless overridden (UNIMPLEMENTED).
            TrialNotFound: no job for the trial (NOT_FOUND).
        """
        raise NotSupported("this runner does not fetch trial data")
