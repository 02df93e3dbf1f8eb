/** What the client returns: plain objects read from the API's messages, each keeping its message. */

import type { Experiment as ExperimentMessage } from "../../../protos/gen/ts/polytrial/v1/experiment";
import type { ArmResult as ArmResultMessage } from "../../../protos/gen/ts/polytrial/v1/result_service";
import { TrialStatus, type Trial as TrialMessage } from "../../../protos/gen/ts/polytrial/v1/trial";
import { checkString, invalidArgument } from "./checks";
import { fromParametersMessage, type Parameters } from "./values";

export { TrialStatus };

/** One metric to minimize or maximize. */
export interface Objective {
  readonly metricName: string;
  readonly minimize: boolean;
}

/** What the server stores for an experiment; `message` has the rest. */
export interface Experiment {
  /** The experiment's id, for example "quadratic". */
  readonly experimentId: string;
  /** The resource name, "experiments/{experimentId}". */
  readonly name: string;
  readonly parameterNames: readonly string[];
  readonly objectives: readonly Objective[];
  /** Trials by status name. */
  readonly trialCounts: Readonly<Record<string, number>>;
  readonly message: ExperimentMessage;
}

/** One parameterization in a trial. */
export interface Arm {
  /** "{trial index}_{arm index}", for example "3_0". */
  readonly name: string;
  readonly parameters: Parameters;
  readonly weight: number;
}

/** One reported value of one metric for one arm. */
export interface Observation {
  readonly armName: string;
  readonly metricName: string;
  readonly mean: number;
  /** The standard error; undefined when unknown. */
  readonly sem: number | undefined;
  /** The step of intermediate data; undefined for final data. */
  readonly step: number | undefined;
}

/** One evaluation of one arm (or of a batch of arms). */
export interface Trial {
  /** "experiments/{experiment}/trials/{index}". */
  readonly name: string;
  readonly experimentId: string;
  /** The trial's dense index in its experiment, from 0. */
  readonly index: number;
  readonly status: TrialStatus;
  readonly arms: readonly Arm[];
  /** The first arm's parameters (the only arm's, usually). */
  readonly parameters: Parameters;
  /** What made the arms ("sobol", "botorch", "manual", ...). */
  readonly generator: string;
  /** Why the trial failed or was abandoned. */
  readonly statusReason: string;
  readonly observations: readonly Observation[];
  /** The runner's name for a deployed trial, "" when it gave none. */
  readonly deployedName: string;
  /** What the runner returned when it started (and stopped) the trial's job. */
  readonly runMetadata: Readonly<Record<string, unknown>>;
  /** The error of the last failed deployment attempt, "" when there was none. */
  readonly deploymentError: string;
  readonly message: TrialMessage;
}

/** An arm's mean of one metric over its trials. */
export interface MetricSummary {
  readonly mean: number;
  readonly sem: number | undefined;
  readonly count: number;
}

/** An arm with its observed metrics (best arm, Pareto frontier). */
export interface ArmResult {
  readonly armName: string;
  readonly parameters: Parameters;
  readonly trialIndices: readonly number[];
  readonly metrics: Readonly<Record<string, MetricSummary>>;
}

export function experimentFromMessage(message: ExperimentMessage): Experiment {
  return {
    experimentId: message.experimentId,
    name: message.name,
    parameterNames: (message.searchSpace?.parameters ?? []).map((p) => p.name),
    objectives: (message.optimizationConfig?.objectives ?? []).map((o) => ({
      metricName: o.metricName,
      minimize: o.minimize,
    })),
    trialCounts: { ...message.trialCounts },
    message,
  };
}

export function trialFromMessage(message: TrialMessage): Trial {
  const arms = message.arms.map((a) => ({
    name: a.arm?.name ?? "",
    parameters: fromParametersMessage(a.arm?.parameters ?? {}),
    weight: a.weight,
  }));
  return {
    name: message.name,
    experimentId: splitTrialName(message.name)[0],
    index: message.index,
    status: message.status,
    arms,
    parameters: arms[0]?.parameters ?? {},
    generator: message.generation?.generator ?? "",
    statusReason: message.statusReason,
    observations: message.observations.map((o) => ({
      armName: o.armName,
      metricName: o.metricName,
      mean: o.mean,
      sem: o.sem,
      step: o.step,
    })),
    deployedName: message.deployedName,
    runMetadata: { ...(message.runMetadata ?? {}) },
    deploymentError: message.deploymentError,
    message,
  };
}

export function armResultFromMessage(message: ArmResultMessage | undefined): ArmResult {
  const metrics: Record<string, MetricSummary> = {};
  for (const m of message?.metrics ?? [])
    metrics[m.metricName] = { mean: m.mean, sem: m.sem, count: m.count };
  return {
    armName: message?.arm?.name ?? "",
    parameters: fromParametersMessage(message?.arm?.parameters ?? {}),
    trialIndices: [...(message?.trialIndices ?? [])],
    metrics,
  };
}

/**
 * "experiments/{id}" for an id; a name is returned unchanged.
 *
 * @throws InvalidArgumentError `experiment` is not a string.
 */
export function experimentName(experiment: string): string {
  checkString("experiment", experiment);
  return experiment.startsWith("experiments/") ? experiment : `experiments/${experiment}`;
}

/** "experiments/{experimentId}/trials/{index}". */
export function trialName(experimentId: string, index: number): string {
  return `experiments/${experimentId}/trials/${index}`;
}

/**
 * The experiment id and index of a trial name.
 *
 * @throws InvalidArgumentError the name is not `experiments/{experiment}/trials/{index}`.
 */
export function splitTrialName(name: string): [experimentId: string, index: number] {
  const match = /^experiments\/([^/]+)\/trials\/(\d+)$/.exec(name);
  if (match === null)
    throw invalidArgument("trial", `"${name}" is not a trial name (experiments/{experiment}/trials/{index})`);
  return [match[1], Number(match[2])];
}
