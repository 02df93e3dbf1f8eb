"""Typed exceptions for the status codes a Polytrial server answers on purpose.

    PolytrialError                       (base; never raised itself)
    ├── InvalidArgumentError             INVALID_ARGUMENT, with field violations
    ├── NotFoundError                    NOT_FOUND
    ├── AlreadyExistsError               ALREADY_EXISTS
    ├── FailedPreconditionError          FAILED_PRECONDITION
    │   └── SearchSpaceExhaustedError    ErrorInfo reason SEARCH_SPACE_EXHAUSTED
    ├── ResourceExhaustedError           RESOURCE_EXHAUSTED
    ├── AbortedError                     ABORTED
    ├── UnavailableError                 UNAVAILABLE
    ├── DeadlineExceededError            DEADLINE_EXCEEDED
    └── UnimplementedError               UNIMPLEMENTED

`from_rpc_error` reads the `google.rpc.Status` details the server attaches
(`ErrorInfo` for the reason, `BadRequest` for field violations), so no caller
parses a message string. Every other code (INTERNAL, UNKNOWN, CANCELLED,
PERMISSION_DENIED, ...) is not ours to interpret: the client re-raises the
`grpc.RpcError` unchanged. A typed exception is always raised `from` the
`grpc.RpcError` it came from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

logger = logging.getLogger(__name__)

SEARCH_SPACE_EXHAUSTED = "SEARCH_SPACE_EXHAUSTED"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field and what is wrong with it.

    Attributes:
        field: Path of the field in the request, for example
            `experiment.search_space.parameters[0].range.lower`.
        description: Why the value is refused.
    """

    field: str
    description: str


class PolytrialError(Exception):
    """Base of every error the server reports on purpose.

    Attributes:
        message: The server's message, a sentence naming the field or resource.
        code: The gRPC status code.
        reason: The `ErrorInfo` reason (UPPER_SNAKE), or "" when none was sent.
        metadata: The `ErrorInfo` metadata, for example `resource_name`.
        violations: Field violations from a `BadRequest` detail.
        request_id: The idempotency key the call sent ("" for calls without
            one). After a `DeadlineExceededError` or `UnavailableError` the
            outcome is unknown: repeating the call with this `request_id`
            returns the first result if there was one, and acts once if not.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.violations = violations
        self.request_id = ""


class InvalidArgumentError(PolytrialError):
    """A request field is malformed or breaks a rule; nothing was stored."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(PolytrialError):
    """The named experiment or trial does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(PolytrialError):
    """A resource with that name exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(PolytrialError):
    """The request is well formed, but the resource's state forbids it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class SearchSpaceExhaustedError(FailedPreconditionError):
    """A finite search space has no arm left that is not already in a trial."""


class ResourceExhaustedError(PolytrialError):
    """A documented service limit was exceeded."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class AbortedError(PolytrialError):
    """A concurrent change won a race; the call may be retried."""

    code = grpc.StatusCode.ABORTED


class UnavailableError(PolytrialError):
    """The server (or a dependency of it) cannot be reached right now."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(PolytrialError):
    """The call did not finish before its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnimplementedError(PolytrialError):
    """The server knows the call but does not implement it (yet)."""

    code = grpc.StatusCode.UNIMPLEMENTED


_BY_CODE: dict[grpc.StatusCode, type[PolytrialError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        ResourceExhaustedError,
        AbortedError,
        UnavailableError,
        DeadlineExceededError,
        UnimplementedError,
    )
}


def from_rpc_error(error: grpc.RpcError) -> PolytrialError | None:
    """Returns the typed exception for a failed call, or None for other codes.

    The caller raises the result `from error`, or re-raises `error` itself when
    this returns None.

    Args:
        error: The exception a stub raised; a `grpc.Call` as well for unary
            calls, which carries the code, message and trailing details.
    """
    code = error.code() if isinstance(error, grpc.Call) else None
    details = _status_details(error)

    reason = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for detail in details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            metadata = dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(
                FieldViolation(v.field, v.description)
                for v in bad_request.field_violations
            )

    # A finite space that runs out is one fault, whichever code a server picks
    # for it (FAILED_PRECONDITION or RESOURCE_EXHAUSTED), so the reason decides.
    cls: type[PolytrialError] | None
    if reason == SEARCH_SPACE_EXHAUSTED:
        cls = SearchSpaceExhaustedError
    else:
        cls = _BY_CODE.get(code) if code is not None else None
    if cls is None:
        return None

    message = error.details() if isinstance(error, grpc.Call) else str(error)
    return cls(
        message or "",
        reason=reason,
        metadata=metadata,
        violations=tuple(violations),
    )


def _status_details(error: grpc.RpcError) -> list[any_pb2.Any]:
    """The `Any` details of the call's rich status, or [] when it has none."""
    if not isinstance(error, grpc.Call):
        return []
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # grpc_status refuses a status whose code or message disagrees with the
        # call's; the code and message of the call itself still stand.
        logger.debug("ignoring inconsistent rich status on %s", error.code())
        return []
    if status is None:
        return []
    return list(status.details)
