"""What a server checks before it serves: its listen address and its database.

Each failure is a `StartupError` whose message is one line a user can act on
(`polytrial serve` prints it and exits 1):

    RuntimeError
    └── StartupError
        ├── AddressUnusable   the port is in use, or the host is not this machine's
        └── DatabaseUnusable  the database cannot be opened, reached or migrated

A malformed listen address is a `ValueError` (`parse_listen_address`).
"""

from __future__ import annotations

import errno
import logging
import socket

from alembic.util import CommandError
from polytrial.server.addresses import host_port_problem
from polytrial.server.storage import Database, normalize_url
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    SQLAlchemyError,
)

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The server cannot start; the message says why in one line."""


class AddressUnusable(StartupError):
    """The listen address cannot be bound."""


class DatabaseUnusable(StartupError):
    """The database cannot be opened, reached or migrated."""


def parse_listen_address(address: str) -> tuple[str, int]:
    """Splits a listen address `host:port` (an IPv6 host in brackets).

    Port 0 picks a free port. gRPC itself takes a port above 65535 (or -1) and
    silently listens on it modulo 65536, so the range is checked here.

    Raises:
        ValueError: the address has no host, no port, an unbracketed IPv6
            host, or a port that is not a number from 0 to 65535.
    """
    problem = host_port_problem(address, lowest_port=0)
    if problem is not None:
        raise ValueError(f"{problem} (port 0 picks a free one)")
    host, _, port = address.rpartition(":")
    return host, int(port)


def in_use_message(address: str) -> str:
    """The error for a port another listener holds, with the usual culprit."""
    return (
        f"could not bind {address}: the port is in use (another `polytrial serve`, "
        "or a worker of one, may still be running on it)"
    )


def check_port_free(address: str) -> None:
    """Fails when any listener, whatever its socket options, holds the port.

    gRPC binds with SO_REUSEADDR and `polytrial serve --workers` with
    SO_REUSEPORT, which lets a second server bind the port of one still
    running (or of its orphaned workers) and silently take some of its
    clients. A bind without SO_REUSEPORT fails against any listener on the
    port. SO_REUSEADDR is set so that connections of an earlier server still
    in TIME_WAIT do not count (Linux refuses it against a listener all the
    same). Errors other than "in use" (a host that is not this machine's)
    are left to the server's own bind, which reports them.

    Raises:
        ValueError: the address is malformed (see `parse_listen_address`).
        AddressUnusable: a listener holds the port.
    """
    host, port = parse_listen_address(address)
    if port == 0:
        return  # the server picks a free port
    try:
        candidates = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        return
    for family, kind, protocol, _, socket_address in candidates:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(socket_address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise AddressUnusable(in_use_message(address)) from error


def open_database(db_url: str, *, pool_size: int, sqlite_synchronous: str) -> Database:
    """Builds the database's engine; nothing connects yet.

    Raises:
        DatabaseUnusable: the URL does not parse, names a database this
            server has no driver for, or an in-memory SQLite database.
        ValueError: `sqlite_synchronous` is neither NORMAL nor FULL.
    """
    try:
        url = make_url(normalize_url(db_url))
    except (ArgumentError, ValueError) as error:
        # Not echoed: a URL that does not parse may hide a password anywhere.
        reason = f"the database URL does not parse ({_reason(error)})"
        raise DatabaseUnusable(reason) from error
    shown = url.render_as_string(hide_password=True)
    if _is_in_memory_sqlite(url):
        reason = "an in-memory database cannot be served (each connection would "
        reason += "get its own empty one); use a file, as sqlite:///polytrial.db"
        # As typed: SQLite URLs carry no password, and rendering would
        # escape the colons of `:memory:`.
        raise DatabaseUnusable(f"database {db_url} cannot be used: {reason}")
    try:
        return Database(
            db_url, pool_size=pool_size, sqlite_synchronous=sqlite_synchronous
        )
    except NoSuchModuleError as error:
        reason = "not a kind of database this server knows; use sqlite:///file.db, "
        reason += "postgresql://user@host/db or a SQLite file path"
        raise DatabaseUnusable(f"database {shown} cannot be used: {reason}") from error
    except ImportError as error:
        reason = f"its driver is not installed ({error})"
        raise DatabaseUnusable(f"database {shown} cannot be used: {reason}") from error


def _is_in_memory_sqlite(url: URL) -> bool:
    """Whether `url` is an in-memory SQLite database.

    That is `sqlite://`, `sqlite:///`, `sqlite:///:memory:` or a `file:` URI
    with `mode=memory`. The server's connections would each see a separate,
    empty database, so the schema migrated on one is missing on the next.
    """
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    return in_memory or url.query.get("mode") == "memory"


def migrate(db: Database) -> None:
    """Connects and upgrades the schema, naming the database on failure.

    Raises:
        DatabaseUnusable: the database cannot be opened or reached, is not a
            database, or holds a schema the migrations cannot upgrade (an
            unrelated table of the same name, a newer revision).
    """
    try:
        db.migrate()
    except (SQLAlchemyError, CommandError) as error:
        shown = db.engine.url.render_as_string(hide_password=True)
        reason = _reason(error)
        raise DatabaseUnusable(f"database {shown} cannot be used: {reason}") from error


def _reason(error: Exception) -> str:
    """The driver's own message on one line, without SQLAlchemy's wrapping."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return " ".join(str(cause).split()) or type(cause).__name__
