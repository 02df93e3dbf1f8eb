"""Errors a runner raises to refuse or fail a call, and the gRPC code each becomes.

    RunnerError
    ├── InvalidTrial     -> INVALID_ARGUMENT    (the trial cannot be run as given)
    ├── TrialRefused     -> FAILED_PRECONDITION (the external system refuses it)
    ├── TrialNotFound    -> NOT_FOUND           (no job for this trial)
    ├── Unavailable      -> UNAVAILABLE         (the external system is down; retry)
    └── NotSupported     -> UNIMPLEMENTED       (an optional method is not offered)

The server leaves a trial CANDIDATE after UNAVAILABLE (and retries it with the
same deployment key) but marks it FAILED after INVALID_ARGUMENT or
FAILED_PRECONDITION, with the message as the reason. Any other exception a
runner raises becomes INTERNAL, logged with its traceback.
"""

from __future__ import annotations

import grpc


class RunnerError(Exception):
    """Base of the errors a runner raises on purpose; the message reaches the server.

    Attributes:
        code: The gRPC status code the error becomes.
        message: A sentence the experimenter can act on.
    """

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTrial(RunnerError):
    """The trial cannot be run as given, for example a parameter is missing."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class TrialRefused(RunnerError):
    """The external system refuses the trial in its current state."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class TrialNotFound(RunnerError):
    """The runner knows no job for the trial (for example after a restart)."""

    code = grpc.StatusCode.NOT_FOUND


class Unavailable(RunnerError):
    """The external system cannot be reached right now; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class NotSupported(RunnerError):
    """The runner does not offer this optional method."""

    code = grpc.StatusCode.UNIMPLEMENTED
