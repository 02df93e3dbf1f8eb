"""The orchestrator: keeps experiments going through their runners to a budget.

    options.py    the options, their defaults and limits
    store.py      the `orchestrations` table, records and lease queries
    policy.py     one tick's decisions (failure rate, grace rule, slots)
    driver.py     one tick: refresh, fail the hopeless, end, suggest, deploy
    scheduler.py  the background loop and tick threads of one replica
    service.py    start / get / stop, called by the gRPC handlers, and the
                  check that refuses to delete an orchestrated experiment

State machine of an orchestration:

    RUNNING -> COMPLETED   budget used (or search space exhausted), none in flight
    RUNNING -> FAILED      failure rate over the tolerated one (in flight stopped)
    RUNNING -> STOPPED     StopOrchestration or timeout_s (in flight stopped)

DeleteExperiment is refused while the orchestration is RUNNING; once it has
ended, the delete takes it with the experiment.

A trial in flight is CANDIDATE, STAGED or RUNNING. With several replicas on
one database, the lease in `store.py` lets exactly one drive each
orchestration; the others take over when its lease expires.
"""

from polytrial.server.orchestration.options import Options, check_options
from polytrial.server.orchestration.scheduler import DEFAULT_LEASE_S, Orchestrator
from polytrial.server.orchestration.service import (
    Orchestrations,
    OrchestrationView,
    refuse_delete_while_running,
)
from polytrial.server.orchestration.store import OrchestrationRecord, State

__all__ = [
    "DEFAULT_LEASE_S",
    "Options",
    "OrchestrationRecord",
    "OrchestrationView",
    "Orchestrations",
    "Orchestrator",
    "State",
    "check_options",
    "refuse_delete_while_running",
]
