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
messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from polytrial.server import errors

logger = logging.getLogger(__name__)

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
    status = status_pb2.Status(code=code, message=error.message)
    status.details.append(
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=errors.ERROR_DOMAIN, metadata=error.metadata
            )
        )
    )
    if isinstance(error, errors.InvalidArgument) and error.violations:
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    return status


def _guard(
    method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        try:
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
            _guard(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
