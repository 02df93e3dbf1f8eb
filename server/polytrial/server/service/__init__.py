"""Experiment and trial semantics between the gRPC handlers and storage.

    Experiments   create / get / list / update / delete
    Trials        suggest / attach / complete / log data / lifecycle moves
    Results       best arm / Pareto frontier
    lifecycle     the trial state machine
    observations  the rules observations must follow (and the completion rule)
    sweep         the periodic sweep that fails lost trials
    generation    the bounded pool where model fits run, off the RPC threads

Everything here raises domain errors (`polytrial.server.errors`) and knows
nothing of gRPC.
"""

from polytrial.server.service.config import ExperimentConfig, load_config
from polytrial.server.service.experiments import Experiments, ExperimentView
from polytrial.server.service.generation import GenerationPool
from polytrial.server.service.results import ArmResult, MetricSummary, Results
from polytrial.server.service.sweep import LostTrialSweeper, sweep_lost_trials
from polytrial.server.service.trials import ArmInput, Trials

__all__ = [
    "ArmInput",
    "ArmResult",
    "ExperimentConfig",
    "ExperimentView",
    "Experiments",
    "GenerationPool",
    "LostTrialSweeper",
    "MetricSummary",
    "Results",
    "Trials",
    "load_config",
    "sweep_lost_trials",
]
