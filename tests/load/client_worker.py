"""A real client process for the load and field-case tests.

Run as `python client_worker.py '<json job>'`. The job names a scenario, the
server addresses (calls rotate over them, as workers behind a load balancer
would) and its parameters. The worker waits at a file barrier so that all
workers of a test start together, runs the scenario with the Python client,
and prints one JSON line with what it saw. Any error it did not cause makes
it exit non-zero after printing that line.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polytrial.client import (
    Client,
    FailedPreconditionError,
    SearchSpaceExhaustedError,
)

Job = dict[str, Any]


def _wait_at_barrier(job: Job) -> None:
    """Announces readiness, then waits until the test opens the gate."""
    barrier = job.get("barrier")
    if not barrier:
        return
    directory = Path(barrier)
    (directory / f"ready-{uuid.uuid4().hex}").touch()
    deadline = time.monotonic() + 120
    while not (directory / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the start gate")
        time.sleep(0.005)


def _clients(job: Job) -> list[Client]:
    """One client per address, or with `balanced` one client over all of them.

    A balanced client spreads calls over the replicas round robin inside
    gRPC, as a load balancer would; when a replica dies, its retries (with
    the same request id) land on the others.
    """
    if job.get("balanced"):
        target = "ipv4:" + ",".join(job["addresses"])
        options = [("grpc.lb_policy_name", "round_robin")]
        return [Client(target, timeout_s=60.0, channel_options=options)]
    return [Client(address, timeout_s=60.0) for address in job["addresses"]]


def suggest_many(job: Job) -> Job:
    """Suggests `count` single-arm trials one call at a time (c09)."""
    clients = _clients(job)
    _wait_at_barrier(job)
    indices = []
    for i in range(job["count"]):
        trial = clients[i % len(clients)].suggest(job["experiment"])
        indices.append(trial.index)
    return {"indices": indices}


def suggest_threads(job: Job) -> Job:
    """Makes `threads` concurrent single-arm suggest calls (c03)."""
    clients = _clients(job)
    _wait_at_barrier(job)
    arms: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(position: int) -> None:
        trial = clients[position % len(clients)].suggest(job["experiment"])
        with lock:
            arms.append(dict(trial.arm.parameters))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(job["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"arms": arms}


def until_exhausted(job: Job) -> Job:
    """Suggests and completes one trial at a time until suggest refuses (c04)."""
    clients = _clients(job)
    _wait_at_barrier(job)
    arms: list[dict[str, Any]] = []
    refusals: list[list[str]] = []
    calls = 0
    while len(refusals) < job.get("refusals", 2):
        client = clients[calls % len(clients)]
        calls += 1
        try:
            trial = client.suggest(job["experiment"])
        except SearchSpaceExhaustedError as exc:
            refusals.append([exc.code.name, exc.reason, exc.message])
            continue
        if refusals:
            raise AssertionError(f"suggest answered after refusing: {trial.name}")
        arms.append(dict(trial.arm.parameters))
        client.complete_trial(trial, float(len(arms)))
    return {"arms": arms, "refusals": refusals}


def complete_race(job: Job) -> Job:
    """Completes each listed trial with this worker's value (c10)."""
    clients = _clients(job)
    _wait_at_barrier(job)
    outcomes: dict[str, str] = {}
    for i, name in enumerate(job["trials"]):
        try:
            clients[i % len(clients)].complete_trial(name, job["value"])
            outcomes[name] = "OK"
        except FailedPreconditionError as exc:
            outcomes[name] = exc.code.name
    return {"outcomes": outcomes}


def create_and_tell(job: Job) -> Job:
    """Creates-or-gets one experiment, then asks and tells `count` times (c14)."""
    clients = _clients(job)
    _wait_at_barrier(job)
    client = clients[0]
    client.create_experiment(
        job["experiment"],
        parameters=[{"name": "x", "type": "range", "bounds": [0.0, 1.0]}],
        objectives={"loss": "minimize"},
        generation_strategy="sobol",
        exist_ok=True,
    )
    completed = []
    for _ in range(job["count"]):
        trial = client.suggest(job["experiment"])
        client.complete_trial(trial, float(trial.arm.parameters["x"]))
        completed.append(trial.index)
    return {"completed": completed}


def ask_tell_for(job: Job) -> Job:
    """Asks and tells until `seconds` pass; reports each acknowledged value."""
    clients = _clients(job)
    _wait_at_barrier(job)
    acknowledged: list[list[Any]] = []
    stop_at = time.monotonic() + job["seconds"]
    calls = 0
    while time.monotonic() < stop_at:
        client = clients[calls % len(clients)]
        calls += 1
        trial = client.suggest(job["experiment"], ttl_s=job.get("ttl_s", 0.0))
        value = float(trial.arm.parameters["x1"]) + calls
        client.complete_trial(trial, value)
        acknowledged.append([trial.experiment_id, trial.index, value])
    return {"acknowledged": acknowledged}


SCENARIOS: dict[str, Callable[[Job], Job]] = {
    "suggest_many": suggest_many,
    "suggest_threads": suggest_threads,
    "until_exhausted": until_exhausted,
    "complete_race": complete_race,
    "create_and_tell": create_and_tell,
    "ask_tell_for": ask_tell_for,
}


def main() -> int:
    job: Job = json.loads(sys.argv[1])
    try:
        result = SCENARIOS[job["scenario"]](job)
    except Exception as exc:  # reported to the test, which fails on it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
