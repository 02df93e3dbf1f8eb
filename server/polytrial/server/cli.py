"""The `polytrial` command line: `polytrial serve` runs the server.

Logging is configured here and nowhere else.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time

import typer
from polytrial.server.app import PolytrialServer, create_server
from polytrial.server.orchestration import DEFAULT_LEASE_S
from polytrial.server.service.generation import DEFAULT_MAX_CONCURRENT_GENERATIONS
from polytrial.server.startup import (
    AddressUnusable,
    DatabaseUnusable,
    StartupError,
    check_port_free,
    parse_listen_address,
)
from polytrial.server.stopping import StopRequest
from polytrial.server.workers import (
    WORKER_EXIT_MARGIN_S,
    forward_stop,
    start_workers,
    stop_with_parent,
    stop_workers,
)
from typer import rich_utils

logger = logging.getLogger(__name__)

# Columns of help and usage errors when stdout is not a terminal.
PIPED_HELP_WIDTH = 100


def _widen_help_off_a_terminal() -> None:
    """Lays help out wider than Rich's 80 columns when stdout is not a terminal.

    At 80 columns the options table shortens long option names
    (`--max-concurrent-gene…`), so piped help (`| less`, a file) would not
    show them. COLUMNS or TERMINAL_WIDTH, when set, still decide.
    """
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return
    if rich_utils.MAX_WIDTH is None:  # TERMINAL_WIDTH was not set
        rich_utils.MAX_WIDTH = PIPED_HELP_WIDTH


_widen_help_off_a_terminal()

app = typer.Typer(
    name="polytrial",
    help="Adaptive experimentation as a gRPC service.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_DB = "sqlite:///polytrial.db"
DEFAULT_ADDRESS = "127.0.0.1:50051"
# Upper bounds of the options, past which a value is a slip rather than a
# choice: a grace period of an hour, a lease of a day (a datetime overflows
# far beyond that), and more server processes than a large machine has cores.
MAX_GRACE_S = 3600.0
MAX_ORCHESTRATION_LEASE_S = 86400.0
MAX_WORKERS = 64


@app.callback()
def main() -> None:
    """Polytrial: adaptive experimentation as a gRPC service."""


def _finite_non_negative(value: float) -> float:
    """Refuses NaN, infinities and negatives in a float option (a usage error)."""
    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"must be a finite number, 0 or more; got {value}")
    return value


def _listen_address(value: str) -> str:
    """Refuses an address without host or port, or with a port out of range."""
    try:
        parse_listen_address(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    return value


def _configure_logging(name: str) -> int:
    """Configures logging for the process; `name` is a level such as INFO."""
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(
            f"unknown log level {name!r}", param_hint="--log-level"
        )
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return level


def _exit_on(error: StartupError) -> typer.Exit:
    """Logs a startup error on one line (with its traceback at DEBUG); exit 1."""
    option = {AddressUnusable: "--address", DatabaseUnusable: "--db"}.get(
        type(error), "serve"
    )
    debug = logger.isEnabledFor(logging.DEBUG)
    logger.error("%s: %s", option, error, exc_info=error if debug else None)
    return typer.Exit(1)


@app.command()
def serve(
    db: str = typer.Option(
        DEFAULT_DB,
        "--db",
        help="Database URL (sqlite:///file.db or postgresql://user@host/db) "
        "or a SQLite file path.",
    ),
    address: str = typer.Option(
        DEFAULT_ADDRESS,
        "--address",
        callback=_listen_address,
        help="host:port to listen on; port 0 picks one.",
    ),
    log_level: str = typer.Option(
        "INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."
    ),
    grace_s: float = typer.Option(
        5.0,
        "--grace-s",
        max=MAX_GRACE_S,
        callback=_finite_non_negative,
        help="Seconds running calls get to finish on shutdown, at most "
        f"{MAX_GRACE_S:.0f}.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=MAX_WORKERS,
        help="Server processes sharing the address (SO_REUSEPORT), each a "
        "replica on the same database; more than one uses more than one core. "
        f"At most {MAX_WORKERS}.",
    ),
    sqlite_synchronous: str = typer.Option(
        "NORMAL",
        "--sqlite-synchronous",
        help="NORMAL: an acknowledged write survives a killed process. FULL: "
        "also a power loss, at one fsync per commit.",
    ),
    max_concurrent_generations: int = typer.Option(
        DEFAULT_MAX_CONCURRENT_GENERATIONS,
        "--max-concurrent-generations",
        min=1,
        help="Bayesian-optimization suggests (model fits) each server process "
        "runs at once, off the RPC threads; more wait for a slot, within their "
        "deadline. The default suits a small machine; allow about one per "
        "spare core. Sobol suggests never wait, and suggests on one experiment "
        "always take turns.",
    ),
    orchestration_lease_s: float = typer.Option(
        DEFAULT_LEASE_S,
        "--orchestration-lease-s",
        min=1.0,
        max=MAX_ORCHESTRATION_LEASE_S,
        callback=_finite_non_negative,
        help="Seconds a replica's hold on an orchestration lasts unrenewed: "
        "another replica takes it over that long after this one died. Keep it "
        f"above the longest model fit; 1 to {MAX_ORCHESTRATION_LEASE_S:.0f} "
        "(a day).",
    ),
    share_port: bool = typer.Option(
        False,
        "--share-port",
        hidden=True,
        help="Bind with SO_REUSEPORT (set by --workers for its replicas).",
    ),
    parent_pid: int = typer.Option(
        0,
        "--parent-pid",
        hidden=True,
        help="Stop when this process is no longer the parent (set by --workers).",
    ),
) -> None:
    """Runs the Polytrial server until SIGINT or SIGTERM."""
    _configure_logging(log_level)
    if sqlite_synchronous.upper() not in ("NORMAL", "FULL"):
        raise typer.BadParameter(
            "must be NORMAL or FULL", param_hint="--sqlite-synchronous"
        )
    stop = StopRequest()
    if parent_pid:  # a worker: it stops with the parent that started it
        stop_with_parent(parent_pid, stop)

    try:
        # Workers bind with SO_REUSEPORT, which would share the port with any
        # other such listener (orphaned workers, a server on another
        # database): the parent first makes sure nothing listens there.
        if not share_port:
            check_port_free(address)
        server, port = create_server(
            db,
            address,
            sqlite_synchronous=sqlite_synchronous.upper(),
            max_concurrent_generations=max_concurrent_generations,
            orchestration_lease_s=orchestration_lease_s,
            share_port=share_port or workers > 1,
        )
    except StartupError as error:
        raise _exit_on(error) from error

    # Signals only request the stop; the main thread carries it out. Set
    # before the workers start, so that each one started is told to stop.
    stop.install(signal.SIGINT, signal.SIGTERM)

    # More workers: the same command on the port this one bound. Each is a
    # full replica (its own pool and lost-trial sweep) and the kernel spreads
    # client connections over them.
    host, _ = parse_listen_address(address)
    children = start_workers(
        workers - 1,
        [
            *("--db", db, "--address", f"{host}:{port}", "--log-level", log_level),
            *("--grace-s", str(grace_s), "--sqlite-synchronous", sqlite_synchronous),
            *("--max-concurrent-generations", str(max_concurrent_generations)),
            *("--orchestration-lease-s", str(orchestration_lease_s)),
        ],
    )

    _serve_until_stopped(server, children, stop, grace_s)


def _serve_until_stopped(
    server: PolytrialServer,
    children: list[subprocess.Popen[bytes]],
    stop: StopRequest,
    grace_s: float,
) -> None:
    """Serves until SIGINT, SIGTERM or another stop request; workers stop too.

    Any number of signals, in any order, stop the server once: later ones
    only write to the stop request's pipe again.
    """
    server.start()
    stop.wait()
    # Logged here rather than in the handler, which must take no lock. A
    # worker whose parent died may get SIGTERM more than once (the kernel
    # sends it on each reparenting); this is the one line for them all.
    if stop.signal_name is not None:
        logger.info("received %s, shutting down", stop.signal_name)

    # The workers stop alongside this process, each with its own grace period;
    # one that takes much longer is killed rather than waited for forever.
    deadline = time.monotonic() + grace_s + WORKER_EXIT_MARGIN_S
    forward_stop(children)
    server.stop(grace_s)
    stop_workers(children, deadline)


if __name__ == "__main__":
    app()
