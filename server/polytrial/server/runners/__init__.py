"""The runner-protocol client: how the server deploys trials on runners.

    channels.py      one gRPC channel per runner address, reused
    client.py        RunnerService calls with deadlines and bounded retries
    messages.py      RunnerTrial messages, deployment keys, metadata checks
    deployment.py    DeployTrial, StopTrial and RefreshTrial, three steps each
    fetched_data.py  which fetched observations are stored

A server makes one `RunnerClient` of its own (`app.py`), shared by its handlers
and its lost-trial sweep, so every thread shares one channel per runner, and
closes it when it stops, which cancels the runner calls still in flight.
`default_deployments(db)` gives code without a server at hand a `Deployments`
on a process-wide client instead.
"""

from __future__ import annotations

import threading

from polytrial.server.runners.channels import ChannelPool
from polytrial.server.runners.client import (
    DEFAULT_MAX_IN_FLIGHT_PER_RUNNER,
    DEFAULT_TIMEOUT_S,
    CallScope,
    RetryPolicy,
    RunnerCallError,
    RunnerClient,
    RunnerTarget,
)
from polytrial.server.runners.deployment import Deployments, RefreshOutcome
from polytrial.server.runners.messages import MAX_RUN_METADATA_BYTES, deployment_key
from polytrial.server.storage import Database

_default_client: RunnerClient | None = None
# Guards the creation of `_default_client` by concurrent first handlers.
_default_lock = threading.Lock()


def default_client() -> RunnerClient:
    """Returns the process-wide runner client, creating it on first use."""
    global _default_client
    with _default_lock:
        if _default_client is None:
            _default_client = RunnerClient()
        return _default_client


def default_deployments(db: Database) -> Deployments:
    """Returns a `Deployments` on `db` using the process-wide runner client."""
    return Deployments(db, default_client())


__all__ = [
    "DEFAULT_MAX_IN_FLIGHT_PER_RUNNER",
    "DEFAULT_TIMEOUT_S",
    "MAX_RUN_METADATA_BYTES",
    "CallScope",
    "ChannelPool",
    "Deployments",
    "RefreshOutcome",
    "RetryPolicy",
    "RunnerCallError",
    "RunnerClient",
    "RunnerTarget",
    "default_client",
    "default_deployments",
    "deployment_key",
]
