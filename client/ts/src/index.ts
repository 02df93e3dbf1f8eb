/**
 * The TypeScript client of Polytrial: ask/tell and synchronous optimization over gRPC.
 *
 *     const client = new Client("localhost:50051");
 *     await client.createExperiment("quadratic", {
 *       parameters: [rangeParameter("x", -5, 5)],
 *       objectives: { loss: "minimize" },
 *     });
 *     const summary = await optimize(client, "quadratic", (p) => (p.x as number) ** 2, 10);
 *     console.log(summary.best?.parameters);
 *     client.close();
 */

export {
  Client,
  type ClientOptions,
  DEFAULT_SUGGEST_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  type SuggestOptions,
  type TrialRef,
} from "./client";
export {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  type ErrorDetails,
  FailedPreconditionError,
  type FieldViolation,
  InvalidArgumentError,
  NotFoundError,
  PolytrialError,
  ResourceExhaustedError,
  RUNNER_BUSY,
  RUNNER_UNAVAILABLE,
  SEARCH_SPACE_EXHAUSTED,
  SearchSpaceExhaustedError,
  UnavailableError,
  UnimplementedError,
} from "./errors";
export {
  type Evaluate,
  type OptimizationSummary,
  optimize,
  type OptimizeOptions,
  type TrialOutcome,
} from "./optimize";
export {
  type Orchestration,
  type OrchestrationOptions,
  OrchestrationState,
  type StartOrchestrationOptions,
} from "./orchestration";
export { backoffMs, DEFAULT_RETRY_POLICY, newRequestId, NO_RETRY, type RetryPolicy } from "./retry";
export {
  choiceParameter,
  type ExperimentSpec,
  fixedParameter,
  type MetricSourceSpec,
  type OutcomeConstraintSpec,
  type RangeOptions,
  rangeParameter,
  type RunnerSpec,
  type StrategySpec,
} from "./spec";
export {
  type Arm,
  type ArmResult,
  type Experiment,
  type MetricSummary,
  type Objective,
  type Observation,
  type Trial,
  trialName,
  TrialStatus,
} from "./types";
export type { BatchResult, MeanSem, MetricValue, ParameterValue, Parameters, Result } from "./values";
