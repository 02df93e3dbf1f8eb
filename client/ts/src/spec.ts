/**
 * Helpers that build an experiment definition:
 *
 *     await client.createExperiment("tune", {
 *       parameters: [rangeParameter("lr", 1e-4, 1e-1, { logScale: true }), choiceParameter("opt", ["adam", "sgd"])],
 *       objectives: { loss: "minimize" },
 *       generationStrategy: "sobol",
 *     });
 *
 * The helpers return the API's messages, so anything they lack can be written
 * as a message. The server validates the definition and answers
 * INVALID_ARGUMENT with field violations; what cannot be sent at all (a word
 * the API has no enum value for, a fractional integer) is refused here with
 * the same error, naming the field as the caller wrote it.
 */

import {
  type Experiment as ExperimentMessage,
  GeneratorKind,
  type GenerationStrategy,
  type MetricSource,
  MetricSourceKind,
  type Parameter,
  type ParameterConstraint,
  ParameterType,
  type RunnerConfig,
} from "../../../protos/gen/ts/polytrial/v1/experiment";
import {
  checkChoice,
  checkInt32,
  checkInt64,
  checkNumber,
  checkObject,
  checkString,
  invalidArgument,
  optional,
} from "./checks";
import { type ParameterValue, toValueMessage } from "./values";

/** Options of a range parameter. */
export interface RangeOptions {
  /** "float" (the default) or "int". */
  readonly type?: "float" | "int";
  /** Search on a log scale (bounds must be positive). */
  readonly logScale?: boolean;
  /** Round float values to this many decimal digits. */
  readonly digits?: number;
}

/**
 * A parameter with values in [lower, upper].
 *
 * @throws InvalidArgumentError `type` is not "float" or "int", a bound is not
 *   a number, or `digits` is not an int32.
 */
export function rangeParameter(
  name: string,
  lower: number,
  upper: number,
  options: RangeOptions = {},
): Parameter {
  const field = `parameters.${name}`;
  const given = checkObject(`${field}.options`, options);
  const type =
    given.type === undefined ? "float" : checkChoice(`${field}.type`, given.type, ["float", "int"]);
  return {
    name: checkString("parameters.name", name),
    kind: {
      $case: "range",
      range: {
        type: type === "int" ? ParameterType.PARAMETER_TYPE_INT : ParameterType.PARAMETER_TYPE_FLOAT,
        lower: checkNumber(`${field}.lower`, lower),
        upper: checkNumber(`${field}.upper`, upper),
        logScale: given.logScale === true,
        digits: optional(checkInt32, `${field}.digits`, given.digits),
      },
    },
  };
}

/**
 * A parameter that takes one of `values`. Numbers are integers when every
 * number given is integral, floats otherwise.
 */
export function choiceParameter(
  name: string,
  values: readonly ParameterValue[],
  options: { readonly ordered?: boolean } = {},
): Parameter {
  const numbers = values.filter((v): v is number => typeof v === "number");
  const kind = numbers.every((v) => Number.isInteger(v)) ? "int" : "float";
  return {
    name,
    kind: {
      $case: "choice",
      choice: { values: values.map((v) => toValueMessage(v, kind)), isOrdered: options.ordered ?? false },
    },
  };
}

/** A parameter held at one value (an integral number is an integer). */
export function fixedParameter(name: string, value: ParameterValue): Parameter {
  return { name, kind: { $case: "fixed", fixed: { value: toValueMessage(value) } } };
}

/** How arms are generated: a kind, or the full strategy. */
export type StrategySpec =
  | "sobol"
  | "bayesian"
  | {
      readonly kind?: "sobol" | "bayesian";
      /** Sobol trials before Bayesian optimization. */
      readonly numInitialTrials?: number;
      /** Makes suggestions reproducible. */
      readonly seed?: number;
    };

/**
 * A runner service that deploys trials: its address ("host:port" or
 * "unix:/path"), or the address and the deadline of each call to it in
 * seconds (the server's default is 10).
 */
export type RunnerSpec = string | { readonly address: string; readonly timeoutS?: number };

/**
 * The RunnerConfig message of a runner spec.
 *
 * @throws InvalidArgumentError the address is not a string or `timeoutS` not a number.
 */
export function runnerMessage(spec: RunnerSpec): RunnerConfig {
  if (typeof spec === "string") return { address: spec };
  const given = checkObject("runner", spec);
  return {
    address: checkString("runner.address", given.address),
    timeoutS: optional(checkNumber, "runner.timeoutS", given.timeoutS),
  };
}

/**
 * Where a metric's data comes from: "client" (reported with completeTrial),
 * "runner" (fetched from the trial's runner by refreshTrial), or a metric
 * service at an address.
 */
export type MetricSourceSpec = "client" | "runner" | { readonly service: string };

function metricSourceMessage(metricName: string, spec: MetricSourceSpec): MetricSource {
  const field = `metricSources.${metricName}`;
  if (typeof spec !== "string") {
    const address = checkString(`${field}.service`, checkObject(field, spec).service);
    return { metricName, kind: MetricSourceKind.METRIC_SOURCE_KIND_SERVICE, address };
  }
  const kind =
    checkChoice(field, spec, ["client", "runner"]) === "runner"
      ? MetricSourceKind.METRIC_SOURCE_KIND_RUNNER
      : MetricSourceKind.METRIC_SOURCE_KIND_CLIENT;
  return { metricName, kind, address: "" };
}

/** The definition `Client.createExperiment` sends. */
export interface ExperimentSpec {
  readonly parameters: readonly Parameter[];
  /** Metric name -> direction. */
  readonly objectives: Readonly<Record<string, "minimize" | "maximize">>;
  readonly parameterConstraints?: readonly ParameterConstraint[];
  /** Metrics recorded but not optimized. */
  readonly trackingMetrics?: readonly string[];
  /** Unset is the server's default: Sobol, then Bayesian optimization. */
  readonly generationStrategy?: StrategySpec;
  readonly description?: string;
  /** The runner that deploys the experiment's trials (`Client.deployTrial`). */
  readonly runner?: RunnerSpec;
  /** Metric name -> where its data comes from; unlisted metrics come from clients. */
  readonly metricSources?: Readonly<Record<string, MetricSourceSpec>>;
}

const GENERATOR_KINDS = {
  sobol: GeneratorKind.GENERATOR_KIND_SOBOL,
  bayesian: GeneratorKind.GENERATOR_KIND_BAYESIAN,
} as const;

function strategyMessage(spec: StrategySpec): GenerationStrategy {
  const field = "generationStrategy";
  const full = typeof spec === "string" ? { kind: spec } : checkObject(field, spec);
  const names = Object.keys(GENERATOR_KINDS) as (keyof typeof GENERATOR_KINDS)[];
  const kind =
    full.kind === undefined
      ? undefined
      : checkChoice(typeof spec === "string" ? field : `${field}.kind`, full.kind, names);
  return {
    kind: kind === undefined ? GeneratorKind.GENERATOR_KIND_UNSPECIFIED : GENERATOR_KINDS[kind],
    numInitialTrials: optional(checkInt32, `${field}.numInitialTrials`, full.numInitialTrials),
    seed: optional(checkInt64, `${field}.seed`, full.seed),
  };
}

/**
 * The Experiment message of a definition.
 *
 * @throws InvalidArgumentError a part of it cannot be sent: an objective's
 *   direction is not "minimize" or "maximize", a metric source is unknown, ...
 */
export function experimentMessage(experimentId: string, spec: ExperimentSpec): ExperimentMessage {
  checkObject("spec", spec);
  if (!Array.isArray(spec.parameters))
    throw invalidArgument("parameters", "is not an array of parameters (rangeParameter, ...)");
  const objectives = checkObject("objectives", spec.objectives);
  const sources = checkObject("metricSources", spec.metricSources ?? {});
  return {
    name: "",
    experimentId,
    description: spec.description ?? "",
    searchSpace: {
      parameters: [...spec.parameters],
      parameterConstraints: [...(spec.parameterConstraints ?? [])],
    },
    optimizationConfig: {
      objectives: Object.entries(objectives).map(([metricName, direction]) => ({
        metricName,
        minimize: checkChoice(`objectives.${metricName}`, direction, ["minimize", "maximize"]) === "minimize",
      })),
      outcomeConstraints: [],
      objectiveThresholds: [],
      trackingMetrics: [...(spec.trackingMetrics ?? [])],
    },
    statusQuo: undefined,
    properties: undefined,
    generationStrategy:
      spec.generationStrategy === undefined ? undefined : strategyMessage(spec.generationStrategy),
    runner: spec.runner === undefined ? undefined : runnerMessage(spec.runner),
    createTime: undefined,
    updateTime: undefined,
    trialCounts: {},
    metricSources: Object.entries(sources).map(([metric, source]) =>
      metricSourceMessage(metric, source as MetricSourceSpec),
    ),
  };
}
