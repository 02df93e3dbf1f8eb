"""The gRPC layer: servicers, proto conversion, and the error-mapping interceptor.

ExperimentServicer -> service.Experiments
TrialServicer      -> service.Trials
ResultServicer     -> service.Results
ErrorMappingInterceptor: domain errors -> status codes with details
"""

from polytrial.server.api.errors import ErrorMappingInterceptor, to_status
from polytrial.server.api.experiments import ExperimentServicer
from polytrial.server.api.results import ResultServicer
from polytrial.server.api.trials import TrialServicer

__all__ = [
    "ErrorMappingInterceptor",
    "ExperimentServicer",
    "ResultServicer",
    "TrialServicer",
    "to_status",
]
