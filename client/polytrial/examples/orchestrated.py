"""Minimizes Hartmann6 the asynchronous way: the server runs it through a runner.

    python -m polytrial.examples.orchestrated --trials 30 --parallel 3

Starts `polytrial serve` on the SQLite file `./.polytrial/demo.db` (or uses the
server at `--address`) and the Python example runner
(`runners/python/examples/benchmark_runner.py`, whose jobs evaluate
Hartmann6 in the background for `--job-seconds` each), creates an experiment
that deploys its trials through that runner and takes `hartmann6` from it,
and starts an orchestration: the server suggests (Sobol first, then Bayesian
optimization), deploys up to `--parallel` trials at once, polls the runner,
collects the data, and ends on its own when the budget is used. This
process only watches: one line per finished trial, then the best arm and
its regret against the known minimum (-3.32237). Both child processes are
stopped at the end, and on Ctrl-C (which stops the orchestration first).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import grpc
from polytrial.client import (
    Client,
    FailedPreconditionError,
    GenerationStrategy,
    MetricSource,
    Orchestration,
    RangeParameter,
    Trial,
    TrialStatus,
)
from polytrial.examples.hartmann6 import (
    HARTMANN6_MINIMUM,
    METRIC,
    PARAMETER_NAMES,
    best_arm_panel,
)
from polytrial.examples.local_server import free_port, local_server
from polytrial.examples.local_server import stop as stop_process
from rich.console import Console

RUNNER_SCRIPT = (
    Path(__file__).resolve().parents[3] / "runners/python/examples/benchmark_runner.py"
)
RUNNER_START_TIMEOUT_S = 30.0


@contextmanager
def example_runner(
    script: Path, *, job_seconds: float, log_path: Path
) -> Iterator[str]:
    """Starts the Python example runner on a free loopback port; yields its address.

    Raises:
        RuntimeError: the script is missing, or the runner did not answer.
    """
    if not script.exists():
        raise RuntimeError(
            f"the example runner {script} is not there; run this from a "
            "checkout of Polytrial or pass --runner-script"
        )
    address = f"127.0.0.1:{free_port()}"
    command = [
        sys.executable,
        str(script),
        "--address",
        address,
        "--job-seconds",
        str(job_seconds),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with grpc.insecure_channel(address) as channel:
            try:
                grpc.channel_ready_future(channel).result(
                    timeout=RUNNER_START_TIMEOUT_S
                )
            except grpc.FutureTimeoutError:
                raise RuntimeError(
                    f"the example runner did not answer on {address}; its log "
                    f"is {log_path}"
                ) from None
        yield address
    finally:
        stop_process(process)


def create_experiment(
    client: Client, experiment_id: str, runner_address: str, seed: int | None
) -> None:
    """Creates the Hartmann6 experiment deployed through the runner."""
    client.create_experiment(
        experiment_id,
        description="Minimize the 6-d Hartmann function through a runner "
        "(polytrial.examples.orchestrated).",
        parameters=[RangeParameter(name, 0.0, 1.0) for name in PARAMETER_NAMES],
        objectives={METRIC: "minimize"},
        generation_strategy=GenerationStrategy(seed=seed) if seed is not None else None,
        runner=runner_address,
        metric_sources=[MetricSource(METRIC, "runner")],
        properties={"example": "hartmann6", "known_minimum": HARTMANN6_MINIMUM},
    )


class Watcher:
    """Prints one line per trial of the orchestration as it ends."""

    def __init__(self, console: Console, client: Client, experiment_id: str) -> None:
        self.console = console
        self.client = client
        self.experiment_id = experiment_id
        self.started = time.monotonic()
        self.printed: set[int] = set()
        self.best: float | None = None

    def on_poll(self, orchestration: Orchestration) -> None:
        """Prints the trials that ended since the last poll."""
        ended = [
            trial
            for trial in self.client.list_trials(self.experiment_id)
            if trial.status.is_final and trial.index not in self.printed
        ]
        for trial in sorted(ended, key=lambda t: (t.end_time or 0, t.index)):
            self.printed.add(trial.index)
            self.console.print(self._line(trial, orchestration), highlight=False)

    def _line(self, trial: Trial, orchestration: Orchestration) -> str:
        value = trial.final_observations().get((f"{trial.index}_0", METRIC))
        if trial.status is TrialStatus.COMPLETED and value is not None:
            if self.best is None or value.mean < self.best:
                self.best = value.mean
            outcome = f"{METRIC} {value.mean:>8.5f}"
        else:
            outcome = f"{trial.status.value}: {trial.status_reason}"
        generator = trial.generation.generator if trial.generation else "?"
        best = "-" if self.best is None else f"{self.best:.5f}"
        return (
            f"{time.monotonic() - self.started:5.1f}s  trial {trial.index:>3}  "
            f"{generator:<8} {outcome}  best {best}  "
            f"({orchestration.trials_created}/{orchestration.options.max_trials} "
            "created)"
        )


def report(console: Console, client: Client, done: Orchestration) -> float | None:
    """Prints how the orchestration ended and the best arm; returns the regret."""
    counts = ", ".join(f"{s.value} {n}" for s, n in done.trial_counts.items())
    console.print(
        f"Orchestration {done.state.value}"
        + (f": {done.state_message}" if done.state_message else "")
        + f" ({counts})",
        highlight=False,
    )
    try:
        best = client.get_best_arm(done.experiment_id)
    except FailedPreconditionError:
        console.print("No trial has data.")
        return None
    panel, regret = best_arm_panel(
        best, [("experiment", f"experiments/{done.experiment_id}")]
    )
    console.print(panel)
    return regret


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the example; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m polytrial.examples.orchestrated",
        description="Minimize Hartmann6 through a runner, orchestrated by the server.",
    )
    parser.add_argument("--trials", type=int, default=30, help="the budget")
    parser.add_argument("--parallel", type=int, default=3, help="trials at once")
    parser.add_argument(
        "--job-seconds", type=float, default=1.0, help="how long each job runs"
    )
    parser.add_argument(
        "--address",
        help="use the Polytrial server at this address instead of starting one",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".polytrial"),
        help="where the started server keeps its SQLite file, and the logs",
    )
    parser.add_argument(
        "--runner-script",
        type=Path,
        default=RUNNER_SCRIPT,
        help="the example runner to start",
    )
    parser.add_argument(
        "--experiment-id",
        help="experiment id (default: hartmann6-runner-<date>-<time>)",
    )
    parser.add_argument("--seed", type=int, help="seed of the generation strategy")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.parallel < 1:
        parser.error("--trials and --parallel must be at least 1")

    console = Console()
    experiment_id = args.experiment_id or time.strftime(
        "hartmann6-runner-%Y%m%d-%H%M%S"
    )
    db_path = args.data_dir / "demo.db"
    server: AbstractContextManager[str]
    if args.address:
        server = nullcontext(args.address)
    else:
        server = local_server(db_path, log_path=args.data_dir / "server.log")
        console.print(
            f"Starting [bold]polytrial serve[/bold] on SQLite file {db_path} "
            f"(log: {args.data_dir / 'server.log'})"
        )

    # Start the server and the runner, create the experiment, orchestrate.
    runner = example_runner(
        args.runner_script,
        job_seconds=args.job_seconds,
        log_path=args.data_dir / "runner.log",
    )
    with server as address, runner as runner_address, Client(address) as client:
        console.print(
            f"Server at {address}, example runner at {runner_address} "
            f"(log: {args.data_dir / 'runner.log'}); experiment "
            f"[bold]{experiment_id}[/bold]"
        )
        create_experiment(client, experiment_id, runner_address, args.seed)
        client.start_orchestration(
            experiment_id,
            max_trials=args.trials,
            max_parallel_trials=args.parallel,
            poll_interval_s=0.5,
        )
        console.print(
            f"Orchestrating {args.trials} trials, {args.parallel} at a time: the "
            "server deploys each through the runner and collects its data"
        )
        watcher = Watcher(console, client, experiment_id)
        try:
            done = client.wait_for_orchestration(
                experiment_id, poll_interval_s=0.5, on_poll=watcher.on_poll
            )
        except KeyboardInterrupt:
            console.print("Interrupted: stopping the orchestration")
            done = client.stop_orchestration(experiment_id, reason="interrupted")
        regret = report(console, client, done)

    console.print("Runner and server stopped.", highlight=False)
    if not args.address:
        console.print(f"The experiment is stored in {db_path}.", highlight=False)
    return 0 if regret is not None else 1


if __name__ == "__main__":
    sys.exit(main())
