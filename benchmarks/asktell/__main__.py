"""Runs the ask/tell benchmark and prints its table; see the package docstring."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from polytrial.client import Client
from polytrial.server.storage import normalize_url
from polytrial.v1 import trial_service_pb2, trial_service_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = [
    {"name": "x1", "type": "range", "bounds": [0.0, 1.0]},
    {"name": "x2", "type": "range", "bounds": [0.0, 1.0]},
]
SAMPLES = 25


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(address) as channel:
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"server at {address} exited with {process.returncode}"
                )
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server at {address} never answered") from None


@contextmanager
def _process(command: list[str], address: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_ready(address, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def polytrial_server(
    db_url: str, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`polytrial serve` on `db_url` (its default INFO logging)."""
    address = f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "polytrial.server.cli", "serve"]
    command += ["--db", db_url, "--address", address, "--workers", str(workers)]
    with _process(command, address) as process:
        if workers > 1:
            time.sleep(2.0)  # the other workers bind the port after the first
        yield address, process


@contextmanager
def echo_server() -> Iterator[str]:
    """The bare gRPC echo server as its own process."""
    port = _free_port()
    command = [sys.executable, "-m", "benchmarks.asktell.echo", "--port", str(port)]
    with _process(command, f"127.0.0.1:{port}"):
        yield f"127.0.0.1:{port}"


@contextmanager
def fresh_database(backend: str, postgres_url: str) -> Iterator[str]:
    """An empty SQLite file on disk, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="polytrial-bench-"))
        try:
            yield f"sqlite:///{directory / 'polytrial.db'}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    base = normalize_url(postgres_url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_workers(jobs: list[dict[str, Any]], seconds: float) -> float:
    """Runs one worker process per job, started together; returns cycles/s."""
    gate = Path(tempfile.mkdtemp(prefix="polytrial-gate-"))
    try:
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.asktell.worker",
                    json.dumps({**job, "gate": str(gate), "seconds": seconds}),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for job in jobs
        ]
        deadline = time.monotonic() + 300
        while len(list(gate.glob("ready-*"))) < len(jobs):
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a benchmark worker exited before the start")
            if time.monotonic() > deadline:
                raise SystemExit("benchmark workers never got ready")
            time.sleep(0.01)
        (gate / "go").touch()
        total = 0
        for process in processes:
            out, _ = process.communicate(timeout=seconds + 120)
            if process.returncode != 0:
                raise SystemExit("a benchmark worker failed")
            total += int(json.loads(out.strip().splitlines()[-1])["cycles"])
        return total / seconds
    finally:
        shutil.rmtree(gate, ignore_errors=True)


def create_experiments(address: str, experiment_ids: list[str]) -> None:
    """Creates Sobol experiments over the benchmark's two parameters."""
    with Client(address) as client:
        for experiment_id in experiment_ids:
            client.create_experiment(
                experiment_id,
                parameters=PARAMETERS,
                objectives={"loss": "minimize"},
                generation_strategy="sobol",
            )


def throughput(
    backend: str,
    postgres_url: str,
    clients: int,
    layout: str,
    seconds: float,
    workers: int,
) -> float:
    """Ask/tell cycles per second of `clients` processes on a fresh database."""
    with (
        fresh_database(backend, postgres_url) as db_url,
        polytrial_server(db_url, workers) as (address, _process),
    ):
        if layout == "one":
            ids = ["shared"] * clients
            create_experiments(address, ["shared"])
        else:
            ids = [f"own-{i}" for i in range(clients)]
            create_experiments(address, ids)
        jobs = [{"kind": "asktell", "address": address, "experiment": e} for e in ids]
        return run_workers(jobs, seconds)


def echo_throughput(clients: int, seconds: float) -> float:
    """Echo pairs per second of `clients` processes."""
    with echo_server() as address:
        return run_workers([{"kind": "echo", "address": address}] * clients, seconds)


def _median_ms(call: Callable[[], object]) -> float:
    times = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scale(backend: str, postgres_url: str, trials: int) -> dict[str, float]:
    """Server RSS after `trials` completed trials, and latencies at that size.

    Suggest is compared with an empty experiment; a list page of 100 trials
    with an experiment that has just those 100 (its first and only page).
    """
    with (
        fresh_database(backend, postgres_url) as db_url,
        polytrial_server(db_url) as (address, process),
    ):
        create_experiments(address, ["big", "empty", "small"])
        with Client(address) as client:
            rss_start = _rss_mb(process.pid)
            made = client.suggest_trials("small", 100)
            for _ in range(trials // 100):
                made += client.suggest_trials("big", 100)
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda t: client.complete_trial(t, 1.0), made))
            rss_full = _rss_mb(process.pid)

            channel = grpc.insecure_channel(address)
            stub = trial_service_pb2_grpc.TrialServiceStub(channel)

            def page(parent: str, token: str = "") -> str:
                request = trial_service_pb2.ListTrialsRequest(
                    parent=parent, page_size=100, page_token=token
                )
                return str(stub.ListTrials(request, timeout=60).next_page_token)

            # The token of the last page of the big experiment.
            token = ""
            for _ in range(trials // 100 - 1):
                token = page("experiments/big", token)
            found = {
                "rss_start_mb": rss_start,
                "rss_after_mb": rss_full,
                "suggest_empty_ms": _median_ms(lambda: client.suggest("empty")),
                "suggest_big_ms": _median_ms(lambda: client.suggest("big")),
                "page_small_ms": _median_ms(lambda: page("experiments/small")),
                "page_big_first_ms": _median_ms(lambda: page("experiments/big")),
                "page_big_last_ms": _median_ms(lambda: page("experiments/big", token)),
            }
            channel.close()
            return found


def main() -> None:
    """Runs every measurement and prints the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.asktell", description=__doc__
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("POLYTRIAL_BENCH_POSTGRES_URL")
        or os.environ.get("POLYTRIAL_TEST_POSTGRES_URL", ""),
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="`polytrial serve --workers`: server processes (one per core)",
    )
    parser.add_argument("--scale-trials", type=int, default=10_000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()

    counts = [int(c) for c in args.clients.split(",") if c]
    backends = [b for b in args.backends.split(",") if b]
    if "postgresql" in backends and not args.postgres_url:
        print("no --postgres-url (or POLYTRIAL_TEST_POSTGRES_URL): SQLite only\n")
        backends.remove("postgresql")

    results: dict[str, Any] = {"seconds": args.seconds, "echo": {}, "asktell": []}
    print(
        f"ask/tell cycles per second, {args.seconds:g} s per run, "
        f"polytrial serve --workers {args.workers}"
    )
    print(
        f"{'backend':<11}{'experiments':<13}{'clients':>7}{'cycles/s':>11}"
        f"{'echo pairs/s':>14}{'share':>8}"
    )
    for clients in counts:
        echo = echo_throughput(clients, args.seconds)
        results["echo"][clients] = echo
        print(f"{'echo':<11}{'-':<13}{clients:>7}{'':>11}{echo:>14.0f}{'':>8}")
        for backend in backends:
            for layout in ("one", "own"):
                rate = throughput(
                    backend,
                    args.postgres_url,
                    clients,
                    layout,
                    args.seconds,
                    args.workers,
                )
                label = "one shared" if layout == "one" else "one each"
                results["asktell"].append(
                    {
                        "backend": backend,
                        "layout": layout,
                        "clients": clients,
                        "cycles_per_s": rate,
                        "echo_pairs_per_s": echo,
                    }
                )
                print(
                    f"{backend:<11}{label:<13}{clients:>7}{rate:>11.0f}"
                    f"{echo:>14.0f}{rate / echo:>8.2f}"
                )

    if not args.skip_scale:
        print(
            f"\nat {args.scale_trials} completed trials (medians of {SAMPLES} "
            "calls): suggest vs an empty experiment, a 100-trial list page vs "
            "an experiment of 100 trials"
        )
        results["scale"] = {}
        for backend in backends:
            found = scale(backend, args.postgres_url, args.scale_trials)
            results["scale"][backend] = found
            print(
                f"{backend:<11}server RSS {found['rss_start_mb']:.0f} MB -> "
                f"{found['rss_after_mb']:.0f} MB; suggest "
                f"{found['suggest_empty_ms']:.1f} ms empty vs "
                f"{found['suggest_big_ms']:.1f} ms; list page "
                f"{found['page_small_ms']:.1f} ms at 100 vs "
                f"{found['page_big_first_ms']:.1f} ms first / "
                f"{found['page_big_last_ms']:.1f} ms last"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
