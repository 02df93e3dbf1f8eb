"""The `polytrial` command line: `polytrial serve` runs the server.

Logging is configured here and nowhere else.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from types import FrameType

import typer
from polytrial.server.app import create_server
from polytrial.server.orchestration import DEFAULT_LEASE_S
from polytrial.server.service.generation import DEFAULT_MAX_CONCURRENT_GENERATIONS

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="polytrial",
    help="Adaptive experimentation as a gRPC service.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_DB = "sqlite:///polytrial.db"
DEFAULT_ADDRESS = "127.0.0.1:50051"


@app.callback()
def main() -> None:
    """Polytrial: adaptive experimentation as a gRPC service."""


@app.command()
def serve(
    db: str = typer.Option(
        DEFAULT_DB,
        "--db",
        help="Database URL (sqlite:///file.db or postgresql://user@host/db) "
        "or a SQLite file path.",
    ),
    address: str = typer.Option(
        DEFAULT_ADDRESS, "--address", help="host:port to listen on; port 0 picks one."
    ),
    log_level: str = typer.Option(
        "INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."
    ),
    grace_s: float = typer.Option(
        5.0, "--grace-s", help="Seconds running calls get to finish on shutdown."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Server processes sharing the address (SO_REUSEPORT), each a "
        "replica on the same database; more than one uses more than one core.",
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
        help="Seconds a replica's hold on an orchestration lasts unrenewed: "
        "another replica takes it over that long after this one died. Keep it "
        "above the longest model fit.",
    ),
    share_port: bool = typer.Option(
        False,
        "--share-port",
        hidden=True,
        help="Bind with SO_REUSEPORT (set by --workers for its replicas).",
    ),
) -> None:
    """Runs the Polytrial server until SIGINT or SIGTERM."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(
            f"unknown log level {log_level!r}", param_hint="--log-level"
        )
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    if sqlite_synchronous.upper() not in ("NORMAL", "FULL"):
        raise typer.BadParameter(
            "must be NORMAL or FULL", param_hint="--sqlite-synchronous"
        )
    try:
        server, port = create_server(
            db,
            address,
            sqlite_synchronous=sqlite_synchronous.upper(),
            max_concurrent_generations=max_concurrent_generations,
            orchestration_lease_s=orchestration_lease_s,
            share_port=share_port or workers > 1,
        )
    except RuntimeError as error:  # the address could not be bound
        logger.error("%s", error)
        raise typer.Exit(1) from error
    # More workers: the same command on the port this one bound. Each is a
    # full replica (its own pool and lost-trial sweep) and the kernel spreads
    # client connections over them.
    host = address.rsplit(":", 1)[0]
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "polytrial.server.cli",
                "serve",
                "--db",
                db,
                "--address",
                f"{host}:{port}",
                "--log-level",
                log_level,
                "--grace-s",
                str(grace_s),
                "--sqlite-synchronous",
                sqlite_synchronous,
                "--max-concurrent-generations",
                str(max_concurrent_generations),
                "--orchestration-lease-s",
                str(orchestration_lease_s),
                "--share-port",
            ]
        )
        for _ in range(workers - 1)
    ]
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    stopping.wait()
    for child in children:
        child.send_signal(signal.SIGTERM)
    server.stop(grace_s)
    for child in children:
        child.wait()


if __name__ == "__main__":
    app()
