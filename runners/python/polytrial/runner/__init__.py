"""Polytrial's runner SDK: deploy trials on any system by implementing `Runner`.

from polytrial.runner import Runner, serve

class MyRunner(Runner):
    def run(self, trial, deployment_key):
        return {"name": submit_job(trial.arms[0].parameters)}

serve(MyRunner(), "127.0.0.1:50061")
"""

from polytrial.runner.base import Runner
from polytrial.runner.errors import (
    InvalidTrial,
    NotSupported,
    RunnerError,
    TrialNotFound,
    TrialRefused,
    Unavailable,
)
from polytrial.runner.service import RunnerServicer, make_server, serve
from polytrial.runner.types import (
    Arm,
    JsonObject,
    Observation,
    ParameterValue,
    Trial,
    TrialKind,
    TrialState,
    TrialStatus,
)

__all__ = [
    "Arm",
    "InvalidTrial",
    "JsonObject",
    "NotSupported",
    "Observation",
    "ParameterValue",
    "Runner",
    "RunnerError",
    "RunnerServicer",
    "Trial",
    "TrialKind",
    "TrialNotFound",
    "TrialRefused",
    "TrialState",
    "TrialStatus",
    "Unavailable",
    "make_server",
    "serve",
]
