"""A bare gRPC echo server: the floor any gRPC service on this machine stands on.

It answers one unary method with the request bytes, without protobuf parsing,
on the same thread-pool server Polytrial uses. Run it as
`python -m benchmarks.asktell.echo --port N`.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures

import grpc

METHOD = "/polytrial.bench.Echo/Echo"
PAYLOAD = b"x" * 64


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def serve(port: int, max_workers: int = 16) -> None:
    """Serves the echo method on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    handler = grpc.method_handlers_generic_handler(
        "polytrial.bench.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(_echo)},
    )
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise SystemExit(f"could not bind 127.0.0.1:{port}")
    server.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stopping.wait()
    server.stop(1.0).wait()


def main() -> None:
    """Parses --port and serves."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
