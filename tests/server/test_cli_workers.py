"""`polytrial serve --workers N`: N processes on one address act as one service."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polytrial_testkit import connect, experiment

pytestmark = pytest.mark.timeout(120)

_SCRIPT = Path(sys.executable).with_name("polytrial")
_LISTENING = re.compile(r"listening on [^\s]+:(\d+)")


def _children(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in found.stdout.split()]


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_two_workers_share_the_port_and_stop_together(
    sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    command = [str(_SCRIPT), "serve", "--db", sqlite_url]
    command += ["--address", "127.0.0.1:0", "--workers", "2"]
    with log.open("w") as sink:
        parent = subprocess.Popen(command, stderr=sink)
    try:
        _wait_for(lambda: _LISTENING.search(log.read_text()), "never listened")
        match = _LISTENING.search(log.read_text())
        assert match is not None
        port = int(match.group(1))
        _wait_for(lambda: len(_children(parent.pid)) == 1, "no second worker")
        (child,) = _children(parent.pid)
        _wait_for(
            lambda: len(_LISTENING.findall(log.read_text())) == 2,
            "the second worker never listened",
        )

        # Separate channels are separate connections, spread over the workers.
        apis = [connect(port) for _ in range(6)]
        apis[0].create(experiment("workers"))
        indices = [t.index for api in apis for t in api.suggest("workers", 5)]
        for api in apis:
            api.close()
        assert sorted(indices) == list(range(30))
    finally:
        parent.terminate()
        code = parent.wait(timeout=30)
    assert code == 0
    assert not Path(f"/proc/{child}").exists()
