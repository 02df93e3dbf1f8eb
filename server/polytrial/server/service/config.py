"""An experiment's configuration: validated at creation, stored as bytes, cached.

The configuration is the immutable part of an `Experiment` message (search
space, optimization config, generation strategy with its drawn seed, runner,
status-quo arm, metric sources). It is validated once by `parse_new_config`,
stored as the serialized message, and parsed back by `load_config`, which
skips the costly feasibility check and caches the result per stored row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from polytrial.server import engine
from polytrial.server.addresses import host_port_problem
from polytrial.server.engine.parsing import MAX_METRIC_SOURCES
from polytrial.server.engine.types import OptimizationSpec, StrategySpec
from polytrial.server.errors import InvalidArgument, ViolationCollector
from polytrial.server.storage import ExperimentRecord
from polytrial.v1 import experiment_pb2

_CACHE_SIZE = 256
# A service limit: larger search spaces make every suggestion and every
# stored arm heavier than one shared server should carry.
MAX_PARAMETERS = 256
# A service limit on the configuration's serialized size. With a description
# and properties at their limits, an experiment then stays within one List
# page (`paging.PAGE_BUDGET_BYTES`, 3 MiB), which a page must hold whole, and
# so within a client's default 4 MiB receive limit.
MAX_CONFIG_BYTES = 2 * 1024 * 1024
# The `Experiment` fields stored as the configuration.
_CONFIG_FIELDS = (
    "search_space",
    "optimization_config",
    "generation_strategy",
    "status_quo",
    "runner",
    "metric_sources",
)
_STATUS_QUO_ARM_NAME = "status_quo"
# The longest deadline of one call to a runner or metric service (1 hour), as
# documented on `RunnerConfig.timeout_s`; a longer wait is a hung runner.
MAX_RUNNER_TIMEOUT_S = 3600.0
MAX_ADDRESS_LENGTH = 512


@dataclass(frozen=True)
class ExperimentConfig:
    """The parsed configuration of one experiment.

    Attributes:
        message: The stored configuration as an `Experiment` message (only the
            configuration fields are set).
        search_space: The validated search space (`engine.SearchSpace`).
        optimization: The validated optimization config.
        strategy: The generation strategy with its seed.
    """

    message: experiment_pb2.Experiment
    search_space: engine.SearchSpace
    optimization: OptimizationSpec
    strategy: StrategySpec

    @property
    def has_runner(self) -> bool:
        """Whether trials are deployed by a runner (they start as CANDIDATE)."""
        return self.message.HasField("runner")

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The objective metrics, in declaration order."""
        return tuple(o.metric_name for o in self.optimization.objectives)


def parse_new_config(
    experiment: experiment_pb2.Experiment,
) -> tuple[bytes, ExperimentConfig]:
    """Validates a new experiment's configuration and returns it serialized.

    Args:
        experiment: The `experiment` field of a CreateExperiment request.

    Returns:
        The bytes to store and the parsed configuration.

    Raises:
        InvalidArgument: any part is invalid; the message names the field
            (INVALID_ARGUMENT); the configuration is larger than
            `MAX_CONFIG_BYTES` (reason LIMIT_EXCEEDED).
    """
    if not experiment.HasField("search_space"):
        raise InvalidArgument(
            "search_space is required", field="experiment.search_space"
        )
    count = len(experiment.search_space.parameters)
    if count > MAX_PARAMETERS:
        raise InvalidArgument(
            f"an experiment has at most {MAX_PARAMETERS} parameters, got {count}",
            field="experiment.search_space.parameters",
            reason="LIMIT_EXCEEDED",
        )
    sources = len(experiment.metric_sources)
    if sources > MAX_METRIC_SOURCES:
        raise InvalidArgument(
            f"an experiment has at most {MAX_METRIC_SOURCES:,} metric sources (one "
            f"per metric), got {sources:,}",
            field="experiment.metric_sources",
            reason="LIMIT_EXCEEDED",
        )
    if not experiment.HasField("optimization_config"):
        raise InvalidArgument(
            "optimization_config is required", field="experiment.optimization_config"
        )
    _check_config_size(experiment)
    search_space = engine.parse_search_space(experiment.search_space)
    optimization = engine.parse_optimization_config(experiment.optimization_config)
    strategy = engine.parse_generation_strategy(
        experiment.generation_strategy, search_space
    )

    collector = ViolationCollector()
    if experiment.HasField("runner"):
        add_runner_config_violations(
            experiment.runner, field="experiment.runner", collector=collector
        )
    _check_metric_sources(experiment, optimization, collector)
    collector.raise_if_any()

    message = experiment_pb2.Experiment()
    message.search_space.CopyFrom(experiment.search_space)
    message.optimization_config.CopyFrom(experiment.optimization_config)
    message.generation_strategy.kind = (
        experiment_pb2.GENERATOR_KIND_SOBOL
        if strategy.kind is engine.GeneratorKind.SOBOL
        else experiment_pb2.GENERATOR_KIND_BAYESIAN
    )
    message.generation_strategy.num_initial_trials = strategy.num_initial_trials
    message.generation_strategy.seed = strategy.seed
    if experiment.HasField("runner"):
        message.runner.CopyFrom(experiment.runner)
    if experiment.HasField("status_quo"):
        params = {
            name: engine.value_from_proto(value)
            for name, value in experiment.status_quo.parameters.items()
        }
        checked = search_space.validate_parameterization(
            params, field="experiment.status_quo.parameters"
        )
        message.status_quo.name = _STATUS_QUO_ARM_NAME
        for name, value in checked.items():
            message.status_quo.parameters[name].CopyFrom(engine.value_to_proto(value))
    message.metric_sources.extend(experiment.metric_sources)
    config = ExperimentConfig(message, search_space, optimization, strategy)
    return message.SerializeToString(deterministic=True), config


def _check_metric_sources(
    experiment: experiment_pb2.Experiment,
    optimization: OptimizationSpec,
    collector: ViolationCollector,
) -> None:
    seen: set[str] = set()
    for i, source in enumerate(experiment.metric_sources):
        path = f"experiment.metric_sources[{i}]"
        if source.metric_name not in optimization.metric_names:
            collector.add(
                f"{path}.metric_name",
                f"metric {source.metric_name!r} is not named by the "
                "optimization config",
            )
        if source.metric_name in seen:
            collector.add(f"{path}.metric_name", "metric listed twice")
        seen.add(source.metric_name)
        if source.kind == experiment_pb2.METRIC_SOURCE_KIND_UNSPECIFIED:
            collector.add(f"{path}.kind", "kind is required")
        elif source.kind not in experiment_pb2.MetricSourceKind.values():
            collector.add(f"{path}.kind", f"unknown kind {source.kind}")
        if source.kind == experiment_pb2.METRIC_SOURCE_KIND_RUNNER and not (
            experiment.HasField("runner")
        ):
            # Without a runner, trials are never deployed: nothing would fetch
            # the metric, and the client would report it instead.
            collector.add(
                f"{path}.kind",
                "a RUNNER metric source needs the experiment to name a runner",
            )
        if source.kind == experiment_pb2.METRIC_SOURCE_KIND_SERVICE:
            if not source.address.strip():
                collector.add(f"{path}.address", "a metric service needs an address")
            elif (problem := address_problem(source.address)) is not None:
                collector.add(f"{path}.address", problem)


def address_problem(address: str) -> str | None:
    """Says what is wrong with a runner or metric-service address, if anything.

    An address is `host:port` (port 1-65535; an IPv6 host in brackets) or
    `unix:/path`. gRPC itself would take far more, and silently: a port of
    116617 wraps around to 51081 and reaches some other runner.
    """
    if address != address.strip() or any(c.isspace() for c in address):
        return f"{address!r} must not contain spaces"
    if len(address) > MAX_ADDRESS_LENGTH:
        return f"is {len(address)} characters long, more than {MAX_ADDRESS_LENGTH}"
    if address.startswith("unix:"):
        return None if len(address) > len("unix:") else "a unix address needs a path"
    return host_port_problem(address)


def _check_config_size(experiment: experiment_pb2.Experiment) -> None:
    """Refuses a configuration larger than `MAX_CONFIG_BYTES` serialized.

    Checked before the parts are parsed, so an oversize one costs little. The
    violation names the largest part, the one worth shrinking.

    Raises:
        InvalidArgument: too large (INVALID_ARGUMENT, reason LIMIT_EXCEEDED).
    """
    sizes = {name: _field_bytes(experiment, name) for name in _CONFIG_FIELDS}
    total = sum(sizes.values())
    if total <= MAX_CONFIG_BYTES:
        return
    largest = max(sizes, key=sizes.__getitem__)
    raise InvalidArgument(
        f"the experiment's configuration is {total:,} bytes serialized, "
        f"{sizes[largest]:,} of them in {largest}; at most {MAX_CONFIG_BYTES:,} "
        "(2 MiB) are allowed",
        field=f"experiment.{largest}",
        reason="LIMIT_EXCEEDED",
    )


def _field_bytes(experiment: experiment_pb2.Experiment, name: str) -> int:
    if name == "metric_sources":
        return sum(source.ByteSize() for source in experiment.metric_sources)
    return int(getattr(experiment, name).ByteSize())


def add_runner_config_violations(
    config: experiment_pb2.RunnerConfig, *, field: str, collector: ViolationCollector
) -> None:
    """Adds what is wrong with a runner config: its address or its timeout."""
    if not config.address.strip():
        collector.add(f"{field}.address", "a runner needs an address")
    elif (problem := address_problem(config.address)) is not None:
        collector.add(f"{field}.address", problem)
    if config.HasField("timeout_s") and not (
        0 < config.timeout_s <= MAX_RUNNER_TIMEOUT_S
    ):
        collector.add(
            f"{field}.timeout_s",
            "must be a positive number of seconds, at most "
            f"{MAX_RUNNER_TIMEOUT_S:.0f}, got {config.timeout_s}",
        )


class _ConfigCache:
    """A small LRU of parsed configurations keyed by the stored bytes.

    Keying by content (not by id) means an experiment deleted and created
    again under the same id, or two databases in one process, never see each
    other's entry. The lock guards the OrderedDict, which handler threads
    share.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, ExperimentConfig] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record: ExperimentRecord) -> ExperimentConfig:
        key = record.config
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        config = _parse_stored(record.config)
        with self._lock:
            self._entries[key] = config
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return config


def _parse_stored(data: bytes) -> ExperimentConfig:
    message = experiment_pb2.Experiment.FromString(data)
    search_space = engine.parse_search_space(
        message.search_space, check_feasibility=False, stored=True
    )
    optimization = engine.parse_optimization_config(
        message.optimization_config, stored=True
    )
    strategy = engine.parse_generation_strategy(
        message.generation_strategy, search_space
    )
    return ExperimentConfig(message, search_space, optimization, strategy)


_cache = _ConfigCache(_CACHE_SIZE)


def load_config(record: ExperimentRecord) -> ExperimentConfig:
    """Returns the parsed configuration of a stored experiment (cached)."""
    return _cache.get(record)
