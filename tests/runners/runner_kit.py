"""Helpers of the runner conformance suite: example runner processes, benchmarks.

Each language's example runner is started as a real process on a free loopback
port (it binds port 0 and prints `listening on HOST:PORT`). Its stdout is read
on a thread so tests can count the `job started name=... key=...` lines: the
proof that a retried Run started no second job.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("python", "go", "typescript")
TS_EXAMPLE = ROOT / "runners/ts/dist/runners/ts/examples/benchmark_runner.js"

_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_JOB = re.compile(r"job started name=(\S+) key=(\S+)")
_T = TypeVar("_T")


def _missing(tool: str) -> None:
    """Skips locally, fails in CI, when a language's toolchain is missing."""
    message = f"{tool} is needed for this runner language (see runners/README.md)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def runner_command(language: str, build_dir: Path) -> list[str]:
    """The command that starts `language`'s example runner (built if needed)."""
    if language == "python":
        return [
            sys.executable,
            str(ROOT / "runners/python/examples/benchmark_runner.py"),
        ]
    if language == "go":
        go = shutil.which("go")
        if go is None:
            _missing("go")
        binary = build_dir / "benchmark-runner-go"
        if not binary.exists():
            # Go's build cache makes this quick after the first time.
            subprocess.run(
                [go, "build", "-o", str(binary), "./examples/benchmark"],
                cwd=ROOT / "runners/go",
                check=True,
                timeout=300,
            )
        return [str(binary)]
    if language == "typescript":
        node, npm = shutil.which("node"), shutil.which("npm")
        if node is None or npm is None:
            _missing("node and npm")
        if not TS_EXAMPLE.exists():
            # `make build-runners` does this; doing it here too keeps the
            # suite runnable on its own. The packages come from the lockfile.
            ts_dir = ROOT / "runners/ts"
            if not (ts_dir / "node_modules").exists():
                npm_ci = [npm, "ci", "--no-audit", "--no-fund"]
                subprocess.run(npm_ci, cwd=ts_dir, check=True, timeout=600)
            build = [npm, "run", "--silent", "build"]
            subprocess.run(build, cwd=ts_dir, check=True, timeout=600)
        return [str(node), str(TS_EXAMPLE)]
    raise ValueError(f"unknown language {language}")


class RunnerProcess:
    """One example runner process; `jobs` lists (name, key) of started jobs."""

    def __init__(
        self, language: str, command: Sequence[str], *, job_s: float, staging_s: float
    ) -> None:
        self.language = language
        self.output: list[str] = []
        self.jobs: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._address: str | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [
                *command,
                "--address",
                "127.0.0.1:0",
                "--job-seconds",
                str(job_s),
                "--staging-seconds",
                str(staging_s),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.output.append(line)
                if (job := _JOB.search(line)) is not None:
                    self.jobs.append((job.group(1), job.group(2)))
            listening = _LISTENING.search(line)
            if listening is not None and self._address is None:
                self._address = f"127.0.0.1:{listening.group(2)}"
                self._ready.set()
        self._ready.set()

    @property
    def address(self) -> str:
        """host:port the runner listens on (waits for it to start)."""
        if not self._ready.wait(timeout=60) or self._address is None:
            raise AssertionError(
                f"{self.language} runner did not start:\n" + "".join(self.output)
            )
        return self._address

    def jobs_with_key(self, key: str) -> list[str]:
        """Names of the jobs started for deployment key `key`."""
        with self._lock:
            return [name for name, job_key in self.jobs if job_key == key]

    def jobs_of(self, experiment_id: str) -> list[str]:
        """Names of the jobs started for trials of `experiment_id`."""
        with self._lock:
            return [
                name for name, _ in self.jobs if name.startswith(f"{experiment_id}-")
            ]

    # The runner prints its `job started` line before it answers Run, but the
    # reader thread may not have read that line yet when the answer arrives
    # (a loaded machine): tests that expect a job wait for it to be seen.

    def seen_jobs_with_key(self, key: str, *, at_least: int = 1) -> list[str]:
        """`jobs_with_key`, once at least `at_least` of them have been read."""
        return wait_for(lambda: _enough(self.jobs_with_key(key), at_least))

    def seen_jobs_of(self, experiment_id: str, *, at_least: int = 1) -> list[str]:
        """`jobs_of`, once at least `at_least` of them have been read."""
        return wait_for(lambda: _enough(self.jobs_of(experiment_id), at_least))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 5 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        # The reader ends at EOF; then the pipe can be closed without a race.
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_runner(
    request: pytest.FixtureRequest, build_dir: Path, *, job_s: float, staging_s: float
) -> Iterator[RunnerProcess]:
    """Starts the example runner of language `request.param`; stops it after."""
    language: str = request.param
    process = RunnerProcess(
        language,
        runner_command(language, build_dir),
        job_s=job_s,
        staging_s=staging_s,
    )
    try:
        assert process.address
        yield process
    finally:
        process.stop()


def _enough(jobs: list[str], at_least: int) -> list[str] | None:
    return jobs if len(jobs) >= at_least else None


def wait_for(
    probe: Callable[[], _T | None], *, timeout_s: float = 30.0, every_s: float = 0.1
) -> _T:
    """Calls `probe` until it returns something other than None."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s}s")
        time.sleep(every_s)


# Reference benchmarks, written apart from the examples so a wrong example
# implementation cannot agree with itself. Inputs are in [0, 1]^d.

_ALPHA = (1.0, 1.2, 3.0, 3.2)
_A = (
    (10.0, 3.0, 17.0, 3.5, 1.7, 8.0),
    (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
    (3.0, 3.5, 1.7, 10.0, 17.0, 8.0),
    (17.0, 8.0, 0.05, 10.0, 0.1, 14.0),
)
_P = (
    (1312, 1696, 5569, 124, 8283, 5886),
    (2329, 4135, 8307, 3736, 1004, 9991),
    (2348, 1451, 3522, 2883, 3047, 6650),
    (4047, 8828, 8732, 5743, 1091, 381),
)


def branin(x: Sequence[float]) -> float:
    a, b, c, r, s, t = (
        1.0,
        5.1 / (4 * math.pi**2),
        5 / math.pi,
        6.0,
        10.0,
        1 / (8 * math.pi),
    )
    x1, x2 = 15 * x[0] - 5, 15 * x[1]
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def currin(x: Sequence[float]) -> float:
    x1, x2 = x
    factor = 1.0 - math.exp(-1.0 / (2 * x2)) if x2 > 0 else 1.0
    return (
        factor
        * (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60)
        / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)
    )


def hartmann6(x: Sequence[float]) -> float:
    return -sum(
        alpha
        * math.exp(
            -sum(
                a * (xj - p / 1e4) ** 2
                for a, xj, p in zip(a_row, x, p_row, strict=True)
            )
        )
        for alpha, a_row, p_row in zip(_ALPHA, _A, _P, strict=True)
    )


REFERENCE = {"branin": (2, branin), "currin": (2, currin), "hartmann6": (6, hartmann6)}


def expected_value(metric: str, parameters: dict[str, float]) -> float:
    dims, function = REFERENCE[metric]
    return function([parameters[f"x{i}"] for i in range(1, dims + 1)])


STEPS = 3  # intermediate observations per example job, at steps 0..2


def learning_curve(metric: str, parameters: dict[str, float], step: int) -> float:
    """The examples' intermediate value: f + (1 + |f|) / (step + 1)."""
    final = expected_value(metric, parameters)
    return final + (1.0 + abs(final)) / (step + 1)


def assert_observations_are_real(
    observations: Sequence[Any],
    arms: dict[str, dict[str, float]],
    metrics: Sequence[str],
    *,
    every_step: bool,
) -> None:
    """Final values equal the benchmark; intermediate ones follow the curve.

    Args:
        observations: `Observation` messages.
        arms: Parameters by arm name.
        metrics: The metrics every arm must have final data for.
        every_step: Whether steps 0..STEPS-1 must all be present.
    """
    keys = [
        (o.arm_name, o.metric_name, o.step if o.HasField("step") else None)
        for o in observations
    ]
    assert len(keys) == len(set(keys)), f"duplicated observations: {keys}"
    final = {
        (o.arm_name, o.metric_name): o.mean
        for o in observations
        if not o.HasField("step")
    }
    want = {
        (arm, m): expected_value(m, params)
        for arm, params in arms.items()
        for m in metrics
    }
    assert final == pytest.approx(want, rel=1e-12)

    stepped = [o for o in observations if o.HasField("step")]
    for o in stepped:
        curve = learning_curve(o.metric_name, arms[o.arm_name], o.step)
        assert o.mean == pytest.approx(curve, rel=1e-12), o
    if every_step:
        found = {(o.arm_name, o.metric_name, o.step) for o in stepped}
        assert found == {(a, m, s) for a in arms for m in metrics for s in range(STEPS)}
