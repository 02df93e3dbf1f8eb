"""The one mapping from domain errors to gRPC status codes, as an interceptor.

    InvalidArgument     -> INVALID_ARGUMENT     + ErrorInfo + BadRequest
    NotFound            -> NOT_FOUND            + ErrorInfo
    AlreadyExists       -> ALREADY_EXISTS       + ErrorInfo
    FailedPrecondition  -> FAILED_PRECONDITION  + ErrorInfo (SearchSpaceExhausted too)
    ResourceExhausted   -> RESOURCE_EXHAUSTED   + ErrorInfo
    Aborted             -> ABORTED              + ErrorInfo
    Unavailable         -> UNAVAILABLE          + ErrorInfo
    DeadlineExceeded    -> DEADLINE_EXCEEDED    + ErrorInfo
    Unimplemented       -> UNIMPLEMENTED        + ErrorInfo
    anything else       -> INTERNAL, traceback logged, no internals in the message

Details travel as `google.rpc.Status` in the `grpc-status-details-bin`
trailer, so clients read the reason and the field violations without parsing
messages. Both trailers together must stay under gRPC's 16 KiB metadata limit,
or the client sees RESOURCE_EXHAUSTED instead of the error: the message and
every detail text are cut (marked) to fit, and field violations past the
budget are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from polytrial.server import errors

logger = logging.getLogger(__name__)

# UTF-8 bytes. The message is percent-encoded in `grpc-message` (up to 3x) and
# the Status is base64-encoded (4/3x): 3 KiB + 8 KiB stays under 16 KiB.
MAX_MESSAGE_BYTES = 1024
MAX_DETAIL_TEXT_BYTES = 512
MAX_STATUS_BYTES = 6 * 1024
_CLIPPED = " ... [truncated]"


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, marked when cut."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    kept = raw[: max_bytes - len(_CLIPPED)].decode(errors="ignore")
    return kept + _CLIPPED


# Most specific class first: SearchSpaceExhausted is a FailedPrecondition.
_CODES: tuple[tuple[type[errors.PolytrialError], int], ...] = (
    (errors.InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (errors.NotFound, code_pb2.NOT_FOUND),
    (errors.AlreadyExists, code_pb2.ALREADY_EXISTS),
    (errors.SearchSpaceExhausted, code_pb2.FAILED_PRECONDITION),
    (errors.FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (errors.ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    (errors.Aborted, code_pb2.ABORTED),
    (errors.Unavailable, code_pb2.UNAVAILABLE),
    (errors.DeadlineExceeded, code_pb2.DEADLINE_EXCEEDED),
    (errors.Unimplemented, code_pb2.UNIMPLEMENTED),
)


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: errors.PolytrialError) -> status_pb2.Status:
    """Builds the `google.rpc.Status` of a domain error, with its details."""
    code = next(
        (code for cls, code in _CODES if isinstance(error, cls)), code_pb2.INTERNAL
    )
    status = status_pb2.Status(
        code=code, message=clip(error.message, MAX_MESSAGE_BYTES)
    )
    metadata = {
        clip(k, MAX_DETAIL_TEXT_BYTES): clip(v, MAX_DETAIL_TEXT_BYTES)
        for k, v in error.metadata.items()
    }
    status.details.append(
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=errors.ERROR_DOMAIN, metadata=metadata
            )
        )
    )
    if isinstance(error, errors.InvalidArgument) and error.violations:
        bad = error_details_pb2.BadRequest()
        room = MAX_STATUS_BYTES - status.ByteSize() - 16  # the Any wrapper
        for v in error.violations:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=clip(v.field, MAX_DETAIL_TEXT_BYTES),
                description=clip(v.description, MAX_DETAIL_TEXT_BYTES),
            )
            # Each entry costs its size plus a tag and a length prefix.
            if bad.ByteSize() + violation.ByteSize() + 4 > room:
                break
            bad.field_violations.append(violation)
        status.details.append(_pack(bad))
    return status


def _decode_hint(error: DecodeError) -> str:
    """What the user can do about a decode error protobuf words for itself.

    Nesting is the one case a valid-looking request hits: JSON fields such as
    `Experiment.properties` take three messages a level, and protobuf stops
    at 100 messages, before the service's own limit could name the field.
    """
    if "MaxDepth" not in str(error):
        return ""
    return (
        "; it nests deeper than protobuf allows: JSON fields such as "
        "experiment.properties may nest at most 32 levels of objects and lists"
    )


def _guard(
    method: str,
    behavior: Callable[[Any, grpc.ServicerContext], Any],
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def guarded(raw: Any, context: grpc.ServicerContext) -> Any:
        try:
            # Decoding here, not in grpcio, turns bytes that are no valid
            # request (bad UTF-8, a cut varint) into INVALID_ARGUMENT instead
            # of grpcio's INTERNAL "Exception deserializing request!".
            try:
                request = raw if deserialize is None else deserialize(raw)
            except DecodeError as exc:
                raise errors.InvalidArgument(
                    f"the request is not a valid protobuf message of {method}: "
                    f"{exc}{_decode_hint(exc)}"
                ) from exc
            return behavior(request, context)
        except errors.PolytrialError as exc:
            status = to_status(exc)
            logger.debug(
                "%s refused: %s %s",
                method,
                code_pb2.Code.Name(status.code),
                exc.message,
            )
            context.abort_with_status(rpc_status.to_status(status))
        except Exception:
            if context.code() not in (None, grpc.StatusCode.OK):
                raise  # The handler aborted on purpose; keep its status.
            logger.exception("%s failed with an unexpected error", method)
            internal = status_pb2.Status(
                code=code_pb2.INTERNAL,
                message=f"internal error in {method}; see the server log",
            )
            context.abort_with_status(rpc_status.to_status(internal))
        raise AssertionError("unreachable")  # pragma: no cover

    return guarded


class ErrorMappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps every unary-unary handler with the domain-error mapping above."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Returns the handler of the call, guarded when it is unary-unary."""
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(
            _guard(method, handler.unary_unary, handler.request_deserializer),
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )
