"""The one error mapping: domain errors become codes with google.rpc details."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from polytrial.server import errors
from polytrial.server.api import ErrorMappingInterceptor, to_status
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    error_info,
    experiment_ids,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)

CODES = {
    errors.InvalidArgument("m", field="f"): code_pb2.INVALID_ARGUMENT,
    errors.NotFound("experiments/x"): code_pb2.NOT_FOUND,
    errors.AlreadyExists("experiments/x"): code_pb2.ALREADY_EXISTS,
    errors.FailedPrecondition("m"): code_pb2.FAILED_PRECONDITION,
    errors.SearchSpaceExhausted("m"): code_pb2.FAILED_PRECONDITION,
    errors.ResourceExhausted("m"): code_pb2.RESOURCE_EXHAUSTED,
    errors.Aborted("m"): code_pb2.ABORTED,
    errors.Unavailable("m"): code_pb2.UNAVAILABLE,
    errors.DeadlineExceeded("m"): code_pb2.DEADLINE_EXCEEDED,
    errors.Unimplemented("m"): code_pb2.UNIMPLEMENTED,
}


@pytest.mark.parametrize("error", list(CODES), ids=lambda e: type(e).__name__)
def test_each_domain_error_maps_to_its_code_with_error_info(
    error: errors.PolytrialError,
) -> None:
    status = to_status(error)
    assert status.code == CODES[error]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == error.reason and info.domain == errors.ERROR_DOMAIN


def _raise(exc: Exception) -> grpc.RpcMethodHandler:
    def behavior(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise exc

    return grpc.unary_unary_rpc_method_handler(behavior)


@pytest.fixture
def channel() -> Iterator[grpc.Channel]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        interceptors=[ErrorMappingInterceptor()],
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Svc",
                {
                    "Bad": _raise(
                        errors.InvalidArgument(
                            "x: too big",
                            violations=[errors.FieldViolation("x", "too big")],
                        )
                    ),
                    "Boom": _raise(RuntimeError("secret internals")),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    server.stop(0).wait()


def test_invalid_argument_carries_field_violations(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/test.Svc/Bad")
    error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: call(b""))
    assert violated_fields(error) == ["x"]
    assert error_info(error).reason == "INVALID_ARGUMENT"


def test_unexpected_exception_is_internal_without_internals(
    channel: grpc.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    call = channel.unary_unary("/test.Svc/Boom")
    error = rpc_error(grpc.StatusCode.INTERNAL, lambda: call(b""))
    assert "secret" not in error.details()
    assert "/test.Svc/Boom" in error.details()
    assert any("secret internals" in r.exc_text for r in caplog.records if r.exc_text)


@pytest.mark.parametrize(
    "raw",
    [b"\x0a\x02\xff\xfe", b"\x08\xff\xff", b"\xff\xff\xff\xff"],
    ids=["bad-utf8", "cut-varint", "garbage"],
)
def test_bytes_that_are_no_valid_request_are_invalid_argument(
    api: Api, raw: bytes
) -> None:
    call = api.channel.unary_unary(
        "/polytrial.v1.ExperimentService/GetExperiment",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )

    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: call(raw, timeout=RPC_TIMEOUT_S)
    )

    assert "not a valid protobuf message" in error.details()


def _length_delimited(field: int, payload: bytes) -> bytes:
    """One protobuf field of wire type 2 (a message or string)."""
    size, length = len(payload), b""
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            return bytes([field << 3 | 2]) + length + payload


def test_properties_nested_past_protobufs_limit_say_how_deep_they_may_go(
    api: Api,
) -> None:
    # Built by hand: the Python protobuf library refuses to build it at all.
    struct = b""
    for _ in range(40):  # Struct{fields: {"a": Value{struct_value: ...}}}
        entry = _length_delimited(1, b"a") + _length_delimited(
            2, _length_delimited(5, struct)
        )
        struct = _length_delimited(1, entry)
    request = _length_delimited(
        1, _length_delimited(1, b"experiments/deep") + _length_delimited(7, struct)
    )
    call = api.channel.unary_unary(
        "/polytrial.v1.ExperimentService/CreateExperiment",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )

    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: call(request, timeout=RPC_TIMEOUT_S)
    )

    assert "experiment.properties may nest at most 32 levels" in error.details()
    assert "deep" not in experiment_ids(api)
