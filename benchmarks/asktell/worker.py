"""One benchmark client process: ask/tell (or echo) in a loop for a fixed time.

Run as `python -m benchmarks.asktell.worker '<json job>'`. The worker
connects, waits at a file gate so that all workers start together, loops
until `seconds` pass and prints one JSON line: the cycles it finished in time.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc


def _wait_at_gate(gate: Path) -> None:
    (gate / f"ready-{uuid.uuid4().hex}").touch()
    deadline = time.monotonic() + 300
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark never opened the start gate")
        time.sleep(0.002)


def ask_tell(job: dict[str, Any]) -> int:
    """Suggest one trial, complete it; repeat. Returns the finished cycles."""
    from polytrial.client import Client

    with Client(job["address"]) as client:
        client.wait_until_ready()
        experiment = job["experiment"]
        # Fetch the objective names once, before the clock starts.
        client.objective_names(experiment)
        _wait_at_gate(Path(job["gate"]))
        cycles = 0
        stop_at = time.perf_counter() + job["seconds"]
        while True:
            trial = client.suggest(experiment)
            client.complete_trial(trial, float(trial.arm.parameters["x1"]))
            if time.perf_counter() > stop_at:
                return cycles
            cycles += 1


def echo(job: dict[str, Any]) -> int:
    """Two echo calls (a pair, like one ask/tell cycle); repeat."""
    from benchmarks.asktell.echo import METHOD, PAYLOAD

    with grpc.insecure_channel(job["address"]) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        call = channel.unary_unary(METHOD)
        call(PAYLOAD, timeout=10)
        _wait_at_gate(Path(job["gate"]))
        pairs = 0
        stop_at = time.perf_counter() + job["seconds"]
        while True:
            call(PAYLOAD, timeout=10)
            call(PAYLOAD, timeout=10)
            if time.perf_counter() > stop_at:
                return pairs
            pairs += 1


def main() -> None:
    """Runs the job given as the first argument and prints its count."""
    job = json.loads(sys.argv[1])
    done = ask_tell(job) if job["kind"] == "asktell" else echo(job)
    print(json.dumps({"cycles": done}), flush=True)


if __name__ == "__main__":
    main()
