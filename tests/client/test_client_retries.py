"""The client retries what is safe to repeat, with one request id, and no more.

These tests need a server that fails on purpose in ways the real one does only
under faults (UNAVAILABLE, DEADLINE_EXCEEDED), so they run a real gRPC server
on a real loopback channel whose TrialService answers from a script.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from polytrial.client import (
    Client,
    DeadlineExceededError,
    FailedPreconditionError,
    RetryPolicy,
    UnavailableError,
)
from polytrial.v1 import (
    experiment_pb2,
    trial_pb2,
    trial_service_pb2,
    trial_service_pb2_grpc,
    values_pb2,
)

pytestmark = pytest.mark.timeout(60)

FAST_RETRY = RetryPolicy(
    max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05, total_timeout_s=10.0
)


class ScriptedTrials(trial_service_pb2_grpc.TrialServiceServicer):
    """Fails the first `failures` calls of each method with `code`, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode, delay_s: float = 0.0):
        self.failures = failures
        self.code = code
        self.delay_s = delay_s
        self.calls: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def _attempt(self, method: str, request_id: str, context: Any) -> None:
        with self.lock:
            seen = self.calls.setdefault(method, [])
            seen.append(request_id)
            attempt = len(seen)
        if attempt <= self.failures:
            if self.delay_s:
                time.sleep(self.delay_s)
            context.abort(self.code, f"scripted failure {attempt}")

    def _trial(self, index: int = 0) -> Any:
        arm = experiment_pb2.Arm(
            name=f"{index}_0",
            parameters={"x": values_pb2.ParameterValue(float_value=0.5)},
        )
        return trial_pb2.Trial(
            name=f"experiments/e/trials/{index}",
            index=index,
            arms=[trial_pb2.TrialArm(arm=arm, weight=1.0)],
            status=trial_pb2.TRIAL_STATUS_RUNNING,
        )

    def SuggestTrials(self, request: Any, context: Any) -> Any:
        self._attempt("SuggestTrials", request.request_id, context)
        return trial_service_pb2.SuggestTrialsResponse(trials=[self._trial()])

    def AttachTrial(self, request: Any, context: Any) -> Any:
        self._attempt("AttachTrial", request.request_id, context)
        return self._trial()

    def CompleteTrial(self, request: Any, context: Any) -> Any:
        self._attempt("CompleteTrial", request.request_id, context)
        trial = self._trial()
        trial.status = trial_pb2.TRIAL_STATUS_COMPLETED
        trial.observations.extend(request.observations)
        return trial

    def FailTrial(self, request: Any, context: Any) -> Any:
        self._attempt("FailTrial", "", context)
        return self._trial()

    def GetTrial(self, request: Any, context: Any) -> Any:
        self._attempt("GetTrial", "", context)
        return self._trial()


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedTrials, str]]:
    servicer = ScriptedTrials(  # type: ignore[abstract]
        failures=2, code=grpc.StatusCode.UNAVAILABLE
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trial_service_pb2_grpc.add_TrialServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_suggest_attach_and_complete_retry_unavailable_with_one_request_id(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    with Client(address, retry=FAST_RETRY) as client:
        trial = client.suggest("e")
        client.attach_trial("e", {"x": 0.5})
        completed = client.complete_trial(("e", 0), {"y": 1.25})

    assert trial.index == 0
    assert completed.observations[0].mean == 1.25
    for method in ("SuggestTrials", "AttachTrial", "CompleteTrial"):
        request_ids = servicer.calls[method]
        assert len(request_ids) == 3, method
        assert len(set(request_ids)) == 1, method
        assert request_ids[0], f"{method} carried no request id"


def test_each_logical_call_draws_a_fresh_request_id(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.failures = 0
    with Client(address, retry=FAST_RETRY) as client:
        client.suggest("e")
        client.suggest("e")
    first, second = servicer.calls["SuggestTrials"]
    assert first != second


def test_a_given_request_id_is_sent_as_is(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    with Client(address, retry=FAST_RETRY) as client:
        client.suggest_trials("e", request_id="my-key")
    assert servicer.calls["SuggestTrials"] == ["my-key"] * 3


def test_retries_stop_after_max_attempts_with_a_typed_error(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.failures = 100
    with (
        Client(address, retry=FAST_RETRY) as client,
        pytest.raises(UnavailableError) as raised,
    ):
        client.suggest("e")
    assert len(servicer.calls["SuggestTrials"]) == FAST_RETRY.max_attempts
    assert isinstance(raised.value.__cause__, grpc.RpcError)
    assert "scripted failure 4" in raised.value.message


def test_deadline_exceeded_is_retried_and_reported_typed(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.code = grpc.StatusCode.DEADLINE_EXCEEDED
    with Client(address, retry=FAST_RETRY) as client:
        client.get_trial(("e", 0))
    assert len(servicer.calls["GetTrial"]) == 3

    servicer.failures = 100
    with (
        Client(address, retry=FAST_RETRY) as client,
        pytest.raises(DeadlineExceededError),
    ):
        client.get_trial(("e", 0))


def test_a_slow_server_hits_the_per_attempt_deadline_then_recovers(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    # The first two attempts sleep past the client's deadline; the client
    # sees DEADLINE_EXCEEDED of its own and retries with the same id.
    servicer.failures, servicer.delay_s = 2, 0.5
    with Client(address, timeout_s=0.2, retry=FAST_RETRY) as client:
        trial = client.suggest("e")
    assert trial.index == 0
    request_ids = servicer.calls["SuggestTrials"]
    assert len(request_ids) == 3 and len(set(request_ids)) == 1


def test_state_changes_without_a_request_id_are_not_retried(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    with (
        Client(address, retry=FAST_RETRY) as client,
        pytest.raises(UnavailableError),
    ):
        client.fail_trial(("e", 0), "boom")
    assert len(servicer.calls["FailTrial"]) == 1


def test_answers_other_than_unavailable_are_final(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.code = grpc.StatusCode.FAILED_PRECONDITION
    with (
        Client(address, retry=FAST_RETRY) as client,
        pytest.raises(FailedPreconditionError),
    ):
        client.complete_trial(("e", 0), {"y": 1.0})
    assert len(servicer.calls["CompleteTrial"]) == 1


def test_the_total_budget_ends_retries_before_the_attempts_run_out(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.failures = 10_000
    policy = RetryPolicy(
        max_attempts=10_000,
        initial_backoff_s=0.02,
        max_backoff_s=0.02,
        total_timeout_s=0.5,
    )
    # On a busy machine the last attempt may be cut by the budget's deadline
    # instead of being answered UNAVAILABLE; either way the budget ended it.
    with (
        Client(address, retry=policy) as client,
        pytest.raises((UnavailableError, DeadlineExceededError)),
    ):
        client.get_trial(("e", 0))
    assert len(servicer.calls["GetTrial"]) < policy.max_attempts


def test_an_unreachable_server_is_unavailable_after_bounded_attempts() -> None:
    # Nothing listens on port 1 of loopback: every attempt fails at once.
    with (
        Client("127.0.0.1:1", retry=FAST_RETRY) as client,
        pytest.raises(UnavailableError),
    ):
        client.get_experiment("e")


def test_unknown_codes_are_re_raised_unchanged(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.code = grpc.StatusCode.PERMISSION_DENIED
    with (
        Client(address, retry=FAST_RETRY) as client,
        pytest.raises(grpc.RpcError) as raised,
    ):
        client.get_trial(("e", 0))
    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert len(servicer.calls["GetTrial"]) == 1


def test_the_default_policy_retries_until_the_budget_not_a_few_attempts(
    scripted: tuple[ScriptedTrials, str],
) -> None:
    servicer, address = scripted
    servicer.failures = 12  # the old default gave up after 5 attempts
    policy = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02)
    assert policy.max_attempts is None and policy.total_timeout_s >= 60
    with Client(address, retry=policy) as client:
        trial = client.suggest("e")
    assert trial.index == 0
    request_ids = servicer.calls["SuggestTrials"]
    assert len(request_ids) == 13 and len(set(request_ids)) == 1


@pytest.mark.parametrize(
    ("code", "raised_type"),
    [
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
    ],
)
def test_an_unknown_outcome_error_carries_the_request_id_for_a_replay(
    scripted: tuple[ScriptedTrials, str],
    code: grpc.StatusCode,
    raised_type: type[Exception],
) -> None:
    servicer, address = scripted
    servicer.code, servicer.failures = code, 100
    with Client(address, retry=FAST_RETRY) as client:
        with pytest.raises(raised_type) as raised:
            client.suggest("e")
        sent = set(servicer.calls["SuggestTrials"])
        assert {raised.value.request_id} == sent  # type: ignore[attr-defined]

        # The replay under that id is the same logical call.
        servicer.failures = 0
        servicer.calls.clear()
        client.suggest_trials(
            "e",
            request_id=raised.value.request_id,  # type: ignore[attr-defined]
        )
        assert set(servicer.calls["SuggestTrials"]) == sent


def test_the_client_logger_has_a_null_handler_so_nothing_reaches_stderr() -> None:
    import logging

    handlers = logging.getLogger("polytrial.client").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
