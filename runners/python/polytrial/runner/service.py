"""The gRPC side of the runner SDK: a `RunnerService` around a `Runner`.

`make_server` builds and binds a server and returns its real port (tests bind
port 0); `serve` is the one-call helper that blocks until interrupted. The
service converts protobuf to the plain types of `polytrial.runner.types`, turns
`RunnerError`s into status codes, and remembers deployment keys so a repeated
Run never starts a second job.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import signal
import threading
from collections.abc import Callable, Mapping
from concurrent import futures
from types import FrameType
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import json_format, struct_pb2
from polytrial.runner.base import Runner
from polytrial.runner.errors import (
    InvalidTrial,
    NotSupported,
    RunnerError,
    TrialRefused,
)
from polytrial.runner.metadata import metadata_problem, representable_fields
from polytrial.runner.types import (
    Arm,
    JsonObject,
    ParameterValue,
    Trial,
    TrialKind,
)
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import runner_service_pb2_grpc as pb_grpc
from polytrial.v1 import values_pb2

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Answers to this many recent deployment keys are kept; a retry of anything
# older would start a second job, and servers retry within seconds.
MAX_REMEMBERED_KEYS = 10_000


class _KeyEntry:
    """The first Run of one deployment key: repeats wait for it and share it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: pb.RunResponse | None = None


class DeploymentKeys:
    """Remembers the answer given to each deployment key.

    A repeat that arrives while the first call is still running waits for it
    rather than starting a second job. A Run that raised is forgotten, so a
    retry after an error runs again.
    """

    def __init__(self, capacity: int = MAX_REMEMBERED_KEYS) -> None:
        self._capacity = capacity
        # Guards `_entries` only; runs happen outside it so keys don't
        # serialize one another.
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[str, _KeyEntry] = (
            collections.OrderedDict()
        )

    def run_once(self, key: str, start: Callable[[], pb.RunResponse]) -> pb.RunResponse:
        """Returns the first answer for `key`, calling `start` only for the first."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                owner = entry is None
                if entry is None:
                    entry = _KeyEntry()
                    self._entries[key] = entry
                    while len(self._entries) > self._capacity:
                        self._entries.popitem(last=False)
            if owner:
                return self._run_as_owner(key, entry, start)
            entry.done.wait()
            if entry.response is not None:
                return entry.response
            # The first call raised and was forgotten: try to become the owner.

    def _run_as_owner(
        self, key: str, entry: _KeyEntry, start: Callable[[], pb.RunResponse]
    ) -> pb.RunResponse:
        try:
            entry.response = start()
            return entry.response
        except BaseException:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            raise
        finally:
            entry.done.set()


def parameter_value(value: values_pb2.ParameterValue) -> ParameterValue:
    """Returns the Python value of a typed `ParameterValue`.

    Raises:
        InvalidTrial: no kind of value is set.
    """
    kind = value.WhichOneof("kind")
    if kind is None:
        raise InvalidTrial("a parameter value has no kind set")
    result: ParameterValue = getattr(value, kind)
    return result


def struct_to_dict(struct: struct_pb2.Struct) -> JsonObject:
    """Returns a Struct as a plain dict (numbers come back as floats)."""
    return dict(json_format.MessageToDict(struct))


def dict_to_struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """Returns JSON-able data as a Struct.

    Raises:
        TypeError: a value cannot be stored in a Struct.
    """
    struct = struct_pb2.Struct()
    if data:
        struct.update(dict(data))
    return struct


def trial_from_proto(message: pb.RunnerTrial) -> Trial:
    """Returns the plain `Trial` of a `RunnerTrial` message."""
    arms = [
        Arm(
            name=arm.name,
            parameters={
                name: parameter_value(value) for name, value in arm.parameters.items()
            },
            weight=arm.weight or 1.0,
        )
        for arm in message.arms
    ]
    kind = (
        TrialKind.BATCH if message.kind == pb.TRIAL_KIND_BATCH else TrialKind.SINGLE_ARM
    )
    return Trial(
        experiment_id=message.experiment_id,
        trial_index=message.trial_index,
        kind=kind,
        arms=arms,
        run_metadata=struct_to_dict(message.run_metadata),
        metric_names=list(message.metric_names),
    )


class RunnerServicer(pb_grpc.RunnerServiceServicer):
    """Serves one `Runner` over gRPC."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._keys = DeploymentKeys()

    def Run(  # noqa: D102 - documented in the proto
        self, request: pb.RunRequest, context: grpc.ServicerContext
    ) -> pb.RunResponse:
        if not request.deployment_key:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "deployment_key: required, so a retried Run starts no second job",
            )

        def start() -> pb.RunResponse:
            trial = trial_from_proto(request.trial)
            metadata = self._runner.run(trial, request.deployment_key)
            problem = metadata_problem(metadata)
            if problem is not None:
                self._stop_unanswerable(trial, metadata, problem)
                raise TrialRefused(f"{problem}; the job was asked to stop")
            return pb.RunResponse(run_metadata=dict_to_struct(metadata))

        return _call(
            context, "Run", lambda: self._keys.run_once(request.deployment_key, start)
        )

    def _stop_unanswerable(self, trial: Trial, metadata: Any, problem: str) -> None:
        """Asks the job `run` started to stop: its metadata cannot be answered.

        The server never learns of a job whose Run fails, so it would not stop
        it; the stop gets the fields that JSON can hold.
        """
        logger.warning(
            "experiment %s trial %d: %s; asking the job to stop",
            trial.experiment_id,
            trial.trial_index,
            problem,
        )
        started = dataclasses.replace(
            trial, run_metadata=representable_fields(metadata)
        )
        try:
            self._runner.stop(started, problem)
        except NotSupported:
            logger.warning(
                "experiment %s trial %d: the runner cannot stop trials; its job "
                "keeps running",
                trial.experiment_id,
                trial.trial_index,
            )
        except Exception:
            logger.exception(
                "experiment %s trial %d: stopping the job failed",
                trial.experiment_id,
                trial.trial_index,
            )

    def StagingRequired(  # noqa: D102
        self, request: pb.StagingRequiredRequest, context: grpc.ServicerContext
    ) -> pb.StagingRequiredResponse:
        return pb.StagingRequiredResponse(
            staging_required=bool(self._runner.staging_required)
        )

    def PollTrialStatus(  # noqa: D102
        self, request: pb.PollTrialStatusRequest, context: grpc.ServicerContext
    ) -> pb.PollTrialStatusResponse:
        def poll() -> pb.PollTrialStatusResponse:
            status = self._runner.poll(trial_from_proto(request.trial))
            return pb.PollTrialStatusResponse(
                state=pb.RunnerTrialState.ValueType(status.state.value),
                reason=status.reason,
            )

        return _call(context, "PollTrialStatus", poll)

    def StopTrial(  # noqa: D102
        self,
        request: pb.RunnerServiceStopTrialRequest,
        context: grpc.ServicerContext,
    ) -> pb.RunnerServiceStopTrialResponse:
        def stop() -> pb.RunnerServiceStopTrialResponse:
            metadata = self._runner.stop(
                trial_from_proto(request.trial), request.reason
            )
            return pb.RunnerServiceStopTrialResponse(
                run_metadata=dict_to_struct(metadata)
            )

        return _call(context, "StopTrial", stop)

    def FetchTrialData(  # noqa: D102
        self, request: pb.FetchTrialDataRequest, context: grpc.ServicerContext
    ) -> pb.FetchTrialDataResponse:
        def fetch() -> pb.FetchTrialDataResponse:
            found = self._runner.fetch_data(
                trial_from_proto(request.trial), list(request.metric_names)
            )
            response = pb.FetchTrialDataResponse()
            for observation in found:
                if not math.isfinite(observation.mean):
                    raise InvalidTrial(
                        f"observation of {observation.metric_name} for arm "
                        f"{observation.arm_name} is not finite"
                    )
                response.observations.add(
                    arm_name=observation.arm_name,
                    metric_name=observation.metric_name,
                    mean=observation.mean,
                    sem=observation.sem,
                    step=observation.step,
                )
            return response

        return _call(context, "FetchTrialData", fetch)


def _call(context: grpc.ServicerContext, method: str, body: Callable[[], _T]) -> _T:
    """Runs `body`; a `RunnerError` becomes its status, anything else INTERNAL."""
    try:
        return body()
    except RunnerError as error:
        _abort(context, error.code, error.message)
    except Exception:
        logger.exception("runner method %s failed", method)
        _abort(
            context,
            grpc.StatusCode.INTERNAL,
            f"{method} failed with an unexpected error; see the runner's log",
        )


def _abort(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str
) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # abort always raises


def make_server(
    runner: Runner, address: str = "127.0.0.1:0", *, max_workers: int = 16
) -> tuple[grpc.Server, int]:
    """Builds a started gRPC server for `runner` and returns it with its port.

    Args:
        runner: The runner to serve.
        address: host:port to bind; port 0 picks a free port.
        max_workers: Threads serving calls; calls beyond this wait.

    Returns:
        The started server and the port it is bound to.

    Raises:
        RuntimeError: the address cannot be bound.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    pb_grpc.add_RunnerServiceServicer_to_server(RunnerServicer(runner), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot bind runner server to {address}")
    server.start()
    return server, port


def serve(
    runner: Runner,
    address: str = "127.0.0.1:50061",
    *,
    on_listening: Callable[[str], None] | None = None,
    grace_s: float = 5.0,
) -> None:
    """Serves `runner` on `address` until SIGINT or SIGTERM, then stops gracefully.

    Call it from the main thread: Python only lets that thread handle signals.
    Elsewhere (tests, an embedding program) use `make_server` instead.

    Args:
        runner: The runner to serve.
        address: host:port to bind; port 0 picks a free port.
        on_listening: Called with the bound "host:port" once serving.
        grace_s: Seconds in-flight calls get to finish when stopping.
    """
    server, port = make_server(runner, address)
    bound = f"{address.rsplit(':', 1)[0]}:{port}"
    logger.info("runner listening on %s", bound)
    if on_listening is not None:
        on_listening(bound)

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stopping.wait()
    server.stop(grace_s).wait()
    logger.info("runner on %s stopped", bound)
