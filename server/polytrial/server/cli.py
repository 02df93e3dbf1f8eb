"""The `polytrial` command line: `polytrial serve` runs the server.

Logging is configured here and nowhere else.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer
from polytrial.server.app import create_server

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

    server, _port = create_server(db, address)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    stopping.wait()
    server.stop(grace_s)


if __name__ == "__main__":
    app()
