"""The one check of `host:port` addresses, for listening and for runners.

gRPC takes far more than it should, and silently: a port of 99999 becomes
34463, a port of -1 becomes 65535. The server's listen address
(`startup.parse_listen_address`) and the runner and metric-service addresses
of an experiment (`service.config.address_problem`) are both checked here, so
they agree on what a host and a port are.
"""

from __future__ import annotations


def host_port_problem(address: str, *, lowest_port: int = 1) -> str | None:
    """Says what is wrong with `address` as `host:port`, if anything.

    An IPv6 host goes in brackets (`[::1]:50051`). `lowest_port` is 0 where
    port 0 means "pick a free one" (a listen address), else 1.
    """
    host, separator, port = address.rpartition(":")
    if not separator or not port:
        return f"{address!r} has no port: use host:port, as 127.0.0.1:50051"
    if not host or host in ("[", "[]") or "/" in host:
        return f"{address!r} is not of the form host:port, as 127.0.0.1:50051"
    if host.startswith("[") != host.endswith("]"):
        return f"{address!r} is not of the form host:port, as 127.0.0.1:50051"
    if ":" in host and not host.startswith("["):
        return f"{address!r}: an IPv6 host goes in brackets, as [::1]:50051"
    if not (port.isascii() and port.isdigit()) or not lowest_port <= int(port) <= 65535:
        return f"{address!r} has no port from {lowest_port} to 65535"
    return None
