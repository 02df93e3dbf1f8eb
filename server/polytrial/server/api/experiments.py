"""gRPC handlers of `polytrial.v1.ExperimentService`."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from polytrial.server import resources
from polytrial.server.api.convert import experiment_to_proto
from polytrial.server.errors import InvalidArgument
from polytrial.server.orchestration import refuse_delete_while_running
from polytrial.server.service import Experiments
from polytrial.server.service.experiments import properties_dict
from polytrial.v1 import (
    experiment_pb2,
    experiment_service_pb2,
    experiment_service_pb2_grpc,
)

pb = experiment_service_pb2


class ExperimentServicer(experiment_service_pb2_grpc.ExperimentServiceServicer):
    """Creates, reads, lists, updates and deletes experiments.

    Args:
        experiments: The experiment service.
    """

    def __init__(self, experiments: Experiments) -> None:
        self.experiments = experiments

    def GetExperiment(
        self, request: pb.GetExperimentRequest, context: grpc.ServicerContext
    ) -> experiment_pb2.Experiment:
        """Returns one experiment."""
        experiment_id = resources.parse_experiment_name(request.name)
        return experiment_to_proto(self.experiments.get(experiment_id))

    def ListExperiments(
        self, request: pb.ListExperimentsRequest, context: grpc.ServicerContext
    ) -> pb.ListExperimentsResponse:
        """Returns one page of experiments."""
        experiments, token = self.experiments.list_page(
            size=request.page_size,
            token=request.page_token,
            convert=experiment_to_proto,
        )
        return pb.ListExperimentsResponse(
            experiments=experiments, next_page_token=token
        )

    def CreateExperiment(
        self, request: pb.CreateExperimentRequest, context: grpc.ServicerContext
    ) -> experiment_pb2.Experiment:
        """Creates an experiment."""
        if not request.HasField("experiment"):
            raise InvalidArgument("experiment is required", field="experiment")
        return experiment_to_proto(self.experiments.create(request.experiment))

    def UpdateExperiment(
        self, request: pb.UpdateExperimentRequest, context: grpc.ServicerContext
    ) -> experiment_pb2.Experiment:
        """Changes an experiment's description and properties."""
        experiment_id = resources.parse_experiment_name(
            request.experiment.name, field="experiment.name"
        )
        given_id = request.experiment.experiment_id
        if given_id and given_id != experiment_id:
            # AIP-203: an immutable field given with another value is an error,
            # not something to ignore silently.
            raise InvalidArgument(
                f"experiment_id is immutable: {given_id!r} differs from the id "
                f"{experiment_id!r} in experiment.name",
                field="experiment.experiment_id",
            )
        properties = {}
        if not request.update_mask.paths or "properties" in request.update_mask.paths:
            properties = properties_dict(
                request.experiment.properties, field="experiment.properties"
            )
        view = self.experiments.update(
            experiment_id,
            description=request.experiment.description,
            properties=properties,
            paths=list(request.update_mask.paths),
        )
        return experiment_to_proto(view)

    def DeleteExperiment(
        self, request: pb.DeleteExperimentRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Deletes an experiment with its trials, unless it is orchestrated."""
        self.experiments.delete(
            resources.parse_experiment_name(request.name),
            check=refuse_delete_while_running,
        )
        return empty_pb2.Empty()
