"""gRPC handlers of `polytrial.v1.ResultService`."""

from __future__ import annotations

import grpc
from polytrial.server import resources
from polytrial.server.api.convert import arm_result_to_proto
from polytrial.server.service import Results
from polytrial.v1 import result_service_pb2, result_service_pb2_grpc

pb = result_service_pb2


class ResultServicer(result_service_pb2_grpc.ResultServiceServicer):
    """Answers what an experiment has found so far.

    Args:
        results: The result service.
    """

    def __init__(self, results: Results) -> None:
        self.results = results

    def GetBestArm(
        self, request: pb.GetBestArmRequest, context: grpc.ServicerContext
    ) -> pb.GetBestArmResponse:
        """Returns the best feasible arm of a single-objective experiment."""
        experiment_id = resources.parse_experiment_name(request.parent, field="parent")
        best = self.results.best_arm(experiment_id)
        return pb.GetBestArmResponse(best=arm_result_to_proto(best))

    def GetParetoFrontier(
        self, request: pb.GetParetoFrontierRequest, context: grpc.ServicerContext
    ) -> pb.GetParetoFrontierResponse:
        """Returns the Pareto-optimal feasible arms."""
        experiment_id = resources.parse_experiment_name(request.parent, field="parent")
        arms = self.results.pareto_frontier(experiment_id)
        return pb.GetParetoFrontierResponse(arms=[arm_result_to_proto(a) for a in arms])
