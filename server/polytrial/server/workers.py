"""The extra processes of `polytrial serve --workers N`, and their tie to the parent.

The parent serves too and starts N - 1 workers: the same command on the port
it bound, with SO_REUSEPORT, each a full replica on the same database. A
worker must not outlive its parent: a parent killed with SIGKILL runs no
shutdown code, and orphaned workers would keep the port (and take clients)
where a restarted server, or one on another database, expects a free one. So
each worker asks Linux to send it SIGTERM when the parent dies, and on every
platform also watches its parent's pid.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from polytrial.server.stopping import StopRequest

logger = logging.getLogger(__name__)

# From <linux/prctl.h>: the signal sent to this process when its parent dies.
_PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 1.0
# Seconds a worker gets, beyond the grace period, to finish its own shutdown
# (stop its orchestrator, close its database) before it is killed.
WORKER_EXIT_MARGIN_S = 10.0


def start_workers(
    count: int, serve_args: Sequence[str]
) -> list[subprocess.Popen[bytes]]:
    """Starts `count` workers running `polytrial serve` with `serve_args`.

    Each also gets `--share-port` and this process's pid as its parent's.
    """
    command = [sys.executable, "-m", "polytrial.server.cli", "serve", *serve_args]
    command += ["--share-port", "--parent-pid", str(os.getpid())]
    return [subprocess.Popen(command) for _ in range(count)]


def stop_workers(children: Sequence[subprocess.Popen[bytes]], deadline: float) -> None:
    """Waits for `children` (already sent SIGTERM) until `deadline`, then kills.

    `deadline` is a `time.monotonic()` value. A worker still running then is
    sent SIGKILL and reaped, so the parent never waits forever on one that
    hangs.
    """
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("worker %d did not stop in time; killing it", child.pid)
            child.kill()
            child.wait()


def forward_stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """Sends SIGTERM to each of `children` still running."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)


def stop_with_parent(parent_pid: int, stop: StopRequest) -> None:
    """Requests `stop` when the process `parent_pid` is no longer the parent.

    On Linux the kernel also sends SIGTERM at once when the parent dies
    (the caller's SIGTERM handler then stops the server). The watch thread
    covers other platforms, and a parent that died before this call.
    """
    _ask_for_sigterm_on_parent_death()
    watch = threading.Thread(
        target=_watch_parent,
        args=(parent_pid, stop),
        name="polytrial-parent-watch",
        daemon=True,
    )
    watch.start()


def _ask_for_sigterm_on_parent_death() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        # The watch thread still notices the parent's death, a little later.
        logger.warning(
            "prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno())
        )


def _watch_parent(parent_pid: int, stop: StopRequest) -> None:
    # An orphan is adopted by init or a subreaper, so its parent pid changes.
    while os.getppid() == parent_pid:
        if stop.requested:
            return
        time.sleep(PARENT_POLL_S)
    logger.warning("parent process %d is gone; this worker shuts down", parent_pid)
    stop.request()
