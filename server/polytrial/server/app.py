"""The server factory: storage, services, gRPC handlers, health and reflection.

`create_server` builds everything, binds the address (port 0 picks a free
port, which tests use) and then migrates the database, without starting;
`PolytrialServer.start` and `stop` run and end it, together with the sweep
that fails lost trials, the bounded pool where model fits run
(`service.generation`), the orchestrator (`orchestration`), and the
server's runner client (closed on stop, which cancels runner calls still in
flight once the grace period is over).
`polytrial serve` (cli.py) is the process entry point; the checks of the
address and the database, and their errors, are in `startup`.

A request larger than `MAX_MESSAGE_BYTES` is refused by gRPC with
RESOURCE_EXHAUSTED before any handler runs.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from polytrial.server.api import (
    ErrorMappingInterceptor,
    ExperimentServicer,
    ResultServicer,
    TrialServicer,
)
from polytrial.server.api.orchestration import OrchestrationServicer
from polytrial.server.orchestration import (
    DEFAULT_LEASE_S,
    Orchestrations,
    Orchestrator,
)
from polytrial.server.runners import Deployments, RunnerClient
from polytrial.server.service import (
    Experiments,
    LostTrialSweeper,
    Results,
    Trials,
)
from polytrial.server.service.generation import (
    DEFAULT_MAX_CONCURRENT_GENERATIONS,
    GenerationPool,
)
from polytrial.server.service.sweep import DEFAULT_SWEEP_INTERVAL_S
from polytrial.server.startup import (
    AddressUnusable,
    in_use_message,
    migrate,
    open_database,
    parse_listen_address,
)
from polytrial.server.storage import Database
from polytrial.v1 import (
    experiment_service_pb2,
    experiment_service_pb2_grpc,
    orchestration_service_pb2,
    orchestration_service_pb2_grpc,
    result_service_pb2,
    result_service_pb2_grpc,
    trial_service_pb2,
    trial_service_pb2_grpc,
)

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    experiment_service_pb2.DESCRIPTOR.services_by_name["ExperimentService"].full_name,
    trial_service_pb2.DESCRIPTOR.services_by_name["TrialService"].full_name,
    result_service_pb2.DESCRIPTOR.services_by_name["ResultService"].full_name,
    orchestration_service_pb2.DESCRIPTOR.services_by_name[
        "OrchestrationService"
    ].full_name,
)
DEFAULT_GRACE_S = 5.0
# Largest request the server reads (gRPC's usual default, stated on purpose).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class PolytrialServer:
    """A bound Polytrial gRPC server and its database.

    Attributes:
        grpc_server: The underlying `grpc.Server`.
        db: The database.
        address: The address as bound, with the real port.
        port: The real port.
        generations: The pool where model-based generations run.
        runner_client: Calls runners for this server's handlers and sweep.
    """

    def __init__(
        self,
        grpc_server: grpc.Server,
        db: Database,
        health_servicer: health.HealthServicer,
        address: str,
        port: int,
        sweeper: LostTrialSweeper | None = None,
        generations: GenerationPool | None = None,
        runner_client: RunnerClient | None = None,
        executor: futures.ThreadPoolExecutor | None = None,
        orchestrator: Orchestrator | None = None,
    ) -> None:
        self.grpc_server = grpc_server
        self.db = db
        self.generations = generations or GenerationPool()
        self._health = health_servicer
        self.address = address
        self.port = port
        self._sweeper = sweeper
        self.runner_client = runner_client or RunnerClient()
        self._executor = executor
        self.orchestrator = orchestrator

    def start(self) -> None:
        """Starts serving and reports SERVING on the health service."""
        self.grpc_server.start()
        if self._sweeper is not None:
            self._sweeper.start()
        if self.orchestrator is not None:
            self.orchestrator.start()
        for name in ("", *SERVICE_NAMES):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "polytrial server listening on %s (database %s)",
            self.address,
            self.db.engine.url,
        )

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stops taking calls, lets running ones finish for `grace_s`, then closes.

        Calls still running after `grace_s` are cancelled, and so are their
        runner calls; their handlers then store what they must (a deployment
        stays CANDIDATE) before the database is closed.
        """
        self._health.enter_graceful_shutdown()
        # The orchestrator first: its ticks call runners and suggest, so it
        # must end (and release its leases) before those close.
        if self.orchestrator is not None:
            self.orchestrator.stop()
        self.grpc_server.stop(grace_s).wait()
        self.runner_client.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        # Queued generations are dropped (their calls are over); a running
        # fit is waited for, so that no generation thread outlives the server.
        self.generations.shutdown()
        if self._sweeper is not None:
            self._sweeper.stop()
        self.db.dispose()
        logger.info("polytrial server on %s stopped", self.address)

    def wait_for_termination(self, timeout_s: float | None = None) -> bool:
        """Blocks until the server stops; returns False on timeout."""
        return bool(self.grpc_server.wait_for_termination(timeout_s))


def create_server(
    db_url: str,
    address: str = "127.0.0.1:0",
    *,
    max_workers: int = 16,
    sweep_interval_s: float = DEFAULT_SWEEP_INTERVAL_S,
    sqlite_synchronous: str = "NORMAL",
    max_concurrent_generations: int = DEFAULT_MAX_CONCURRENT_GENERATIONS,
    orchestration_lease_s: float = DEFAULT_LEASE_S,
    share_port: bool = False,
) -> tuple[PolytrialServer, int]:
    """Builds a server on `db_url`, binds `address` and migrates the database.

    Args:
        db_url: A SQLAlchemy URL (`sqlite:///file.db`,
            `postgresql://user@host/db`) or a SQLite file path.
        address: `host:port` to bind; port 0 picks a free one.
        max_workers: Threads handling calls.
        sweep_interval_s: Seconds between sweeps for lost trials; 0 turns
            the periodic sweep off (reads and suggestions still fail them).
        sqlite_synchronous: SQLite's sync level, "NORMAL" or "FULL" (see
            `polytrial.server.storage.database`).
        max_concurrent_generations: Model-based generations (Bayesian
            optimization fits) that run at once; more suggests wait for a
            slot, within their deadline.
        orchestration_lease_s: How long this replica's hold on an
            orchestration lasts unrenewed; another replica takes it over
            that long after this one died.
        share_port: Bind with SO_REUSEPORT, so that other replicas (the
            `--workers` of `polytrial serve`) can listen on the same port.
            Off by default: gRPC would otherwise let a second, unrelated
            server bind a port in use and silently take half its clients.

    Returns:
        The server (not started) and the port it bound.

    Raises:
        AddressUnusable: the address could not be bound (a RuntimeError).
        DatabaseUnusable: the database could not be opened, reached or
            migrated, or is an in-memory SQLite one (a RuntimeError).
        ValueError: `address` is not host:port with a port from 0 to 65535,
            or `max_concurrent_generations` is below 1.
    """
    host, _ = parse_listen_address(address)
    generations = GenerationPool(max_concurrent_generations)
    db = open_database(
        db_url, pool_size=max_workers, sqlite_synchronous=sqlite_synchronous
    )

    executor = futures.ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix="polytrial-rpc"
    )
    grpc_server = grpc.server(
        executor,
        interceptors=[ErrorMappingInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if share_port else 0),
        ],
    )
    trials = Trials(db, generations)
    # A hung runner may hold at most half the RPC threads (and 4 per runner,
    # see `runners.client`), so other calls, health checks included, go on.
    runner_client = RunnerClient(max_in_flight=max(1, max_workers // 2))
    experiment_service_pb2_grpc.add_ExperimentServiceServicer_to_server(
        ExperimentServicer(Experiments(db)), grpc_server
    )
    trial_service_pb2_grpc.add_TrialServiceServicer_to_server(
        TrialServicer(trials, runner_client), grpc_server
    )
    result_service_pb2_grpc.add_ResultServiceServicer_to_server(
        ResultServicer(Results(trials)), grpc_server
    )
    deployments = Deployments(db, runner_client)
    orchestration_service_pb2_grpc.add_OrchestrationServiceServicer_to_server(
        OrchestrationServicer(Orchestrations(db, trials, deployments)), grpc_server
    )
    orchestrator = Orchestrator(db, trials, deployments, lease_s=orchestration_lease_s)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), grpc_server
    )

    # Bind before migrating, so that a server refused its address leaves no
    # new database file behind.
    try:
        port = _bind(grpc_server, address)
        migrate(db)
    except Exception:
        grpc_server.stop(None)
        db.dispose()
        raise
    sweeper = (
        LostTrialSweeper(db, sweep_interval_s, runner_client=runner_client)
        if sweep_interval_s > 0
        else None
    )
    if sweeper is not None:
        trials.on_lost = sweeper.stop_jobs
    server = PolytrialServer(
        grpc_server,
        db,
        health_servicer,
        f"{host}:{port}",
        port,
        sweeper,
        generations,
        runner_client=runner_client,
        executor=executor,
        orchestrator=orchestrator,
    )
    return server, port


def _bind(grpc_server: grpc.Server, address: str) -> int:
    """Binds `address` and returns the real port.

    Raises:
        AddressUnusable: gRPC could not bind it.
    """
    port: int
    try:
        port = grpc_server.add_insecure_port(address)
    except RuntimeError as error:  # gRPC's message points at its debug logs
        port = 0
        cause: Exception | None = error
    else:
        cause = None
    if port == 0:
        raise AddressUnusable(
            f"{in_use_message(address)}; or the host is not an address of this machine"
        ) from cause
    return port
