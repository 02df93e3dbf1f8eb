"""Domain errors of the Polytrial server, and the gRPC status code each becomes.

    PolytrialError
    ├── InvalidArgument      -> INVALID_ARGUMENT   (bad field; carries violations)
    ├── NotFound             -> NOT_FOUND          (names what is missing)
    ├── AlreadyExists        -> ALREADY_EXISTS
    ├── FailedPrecondition   -> FAILED_PRECONDITION (a lifecycle rule; carries a reason)
    │   └── SearchSpaceExhausted                   (a finite space has no new arm)
    ├── ResourceExhausted    -> RESOURCE_EXHAUSTED (a service limit)
    ├── Aborted              -> ABORTED            (a conflict the caller may retry)
    ├── Unavailable          -> UNAVAILABLE        (a dependency is down; retry later)
    ├── DeadlineExceeded     -> DEADLINE_EXCEEDED
    └── Unimplemented        -> UNIMPLEMENTED

Only the gRPC layer (`polytrial.server.api`) turns these into status codes; the
storage layer and the engine raise them and know nothing of gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR_DOMAIN = "polytrial.dev"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its path in the request and what is wrong with it."""

    field: str
    description: str


class PolytrialError(Exception):
    """Base of every error the server reports to a caller on purpose.

    Attributes:
        message: A sentence a user can act on.
        reason: A machine-readable UPPER_SNAKE reason, sent as `ErrorInfo.reason`.
        metadata: Extra machine-readable facts, sent as `ErrorInfo.metadata`.
    """

    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})


class InvalidArgument(PolytrialError):
    """A request field is malformed or breaks a rule; nothing was stored."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        violations: list[FieldViolation] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        found = list(violations or [])
        if field is not None and not found:
            found.append(FieldViolation(field=field, description=message))
        self.violations = found


class NotFound(PolytrialError):
    """The named resource does not exist."""

    default_reason = "NOT_FOUND"

    def __init__(self, resource_name: str, message: str | None = None) -> None:
        super().__init__(
            message or f"{resource_name} does not exist",
            metadata={"resource_name": resource_name},
        )
        self.resource_name = resource_name


class AlreadyExists(PolytrialError):
    """A resource with that name exists already."""

    default_reason = "ALREADY_EXISTS"

    def __init__(self, resource_name: str, message: str | None = None) -> None:
        super().__init__(
            message or f"{resource_name} already exists",
            metadata={"resource_name": resource_name},
        )
        self.resource_name = resource_name


class FailedPrecondition(PolytrialError):
    """The request is well formed but the resource's state forbids it."""

    default_reason = "FAILED_PRECONDITION"


class SearchSpaceExhausted(FailedPrecondition):
    """Every arm of a finite search space is already in a live trial."""

    default_reason = "SEARCH_SPACE_EXHAUSTED"


class ResourceExhausted(PolytrialError):
    """A documented service limit was exceeded."""

    default_reason = "LIMIT_EXCEEDED"


class Aborted(PolytrialError):
    """A concurrent change won a race; the caller may retry."""

    default_reason = "ABORTED"


class Unavailable(PolytrialError):
    """A dependency (the database, a runner) cannot be reached right now."""

    default_reason = "UNAVAILABLE"


class DeadlineExceeded(PolytrialError):
    """A dependency did not answer in time."""

    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(PolytrialError):
    """The feature exists in the API but not (yet) in this server or runner."""

    default_reason = "UNIMPLEMENTED"


@dataclass
class ViolationCollector:
    """Gathers field violations so a request reports all its faults at once."""

    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        """Records that `field_path` is invalid for `description`."""
        self.violations.append(FieldViolation(field_path, description))

    def raise_if_any(self) -> None:
        """Raises InvalidArgument naming every violation, if there are any.

        Raises:
            InvalidArgument: when at least one violation was added.
        """
        if not self.violations:
            return
        message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        raise InvalidArgument(message, violations=list(self.violations))
