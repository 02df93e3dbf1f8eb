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
 * the API has no enum value for, a fractional integer, a key the client does
 * not know, which would be dropped) is refused here with the same error,
 * naming the field as the caller wrote it.
 */

import {
  type Arm,
  ComparisonOp,
  type Experiment as ExperimentMessage,
  GeneratorKind,
  type GenerationStrategy,
  type MetricSource,
  MetricSourceKind,
  type ObjectiveThreshold,
  type OutcomeConstraint,
  type Parameter,
  type ParameterConstraint,
  ParameterType,
  type RunnerConfig,
} from "../../../protos/gen/ts/polytrial/v1/experiment";
import {
  checkArray,
  checkChoice,
  checkInt32,
  checkInt64,
  checkJson,
  checkKeys,
  checkNumber,
  checkObject,
  checkOptions,
  checkString,
  invalidArgument,
  optional,
} from "./checks";
import {
  numberKinds,
  type ParameterValue,
  type Parameters,
  toParametersMessage,
  toValueMessage,
} from "./values";

/** Options of a range parameter. */
export interface RangeOptions {
  /** "float" (the default) or "int". */
  readonly type?: "float" | "int";
  /** Search on a log scale (bounds must be positive). */
  readonly logScale?: boolean;
  /** Round float values to this many decimal digits. */
  readonly digits?: number;
}

const RANGE_OPTIONS: Record<keyof RangeOptions, true> = { type: true, logScale: true, digits: true };

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
  const given = checkKeys(field, checkObject(`${field}.options`, options), RANGE_OPTIONS);
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
 *
 * @throws InvalidArgumentError `values` is not an array (`parameters.{name}.values`),
 *   a value is not a number, string or boolean, or an option is unknown.
 */
export function choiceParameter(
  name: string,
  values: readonly ParameterValue[],
  options: { readonly ordered?: boolean } = {},
): Parameter {
  const field = `parameters.${name}`;
  const given = checkKeys(field, checkObject(`${field}.options`, options), { ordered: true });
  const list = checkArray(`${field}.values`, values) as readonly ParameterValue[];
  const numbers = list.filter((v): v is number => typeof v === "number");
  const kind = numbers.every((v) => Number.isInteger(v)) ? "int" : "float";
  return {
    name: checkString("parameters.name", name),
    kind: {
      $case: "choice",
      choice: {
        values: list.map((v, i) => toValueMessage(v, kind, `${field}.values[${i}]`)),
        isOrdered: given.ordered === true,
      },
    },
  };
}

/** A parameter held at one value (an integral number is an integer). */
export function fixedParameter(name: string, value: ParameterValue): Parameter {
  const message = toValueMessage(value, undefined, `parameters.${name}.value`);
  return { name: checkString("parameters.name", name), kind: { $case: "fixed", fixed: { value: message } } };
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
  const given = checkOptions("runner", spec, { address: true, timeoutS: true });
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
    const address = checkString(`${field}.service`, checkOptions(field, spec, { service: true }).service);
    return { metricName, kind: MetricSourceKind.METRIC_SOURCE_KIND_SERVICE, address };
  }
  const kind =
    checkChoice(field, spec, ["client", "runner"]) === "runner"
      ? MetricSourceKind.METRIC_SOURCE_KIND_RUNNER
      : MetricSourceKind.METRIC_SOURCE_KIND_CLIENT;
  return { metricName, kind, address: "" };
}

/**
 * A bound on a metric that good arms respect: "metric <= bound",
 * "metric >= bound", or its parts.
 */
export type OutcomeConstraintSpec =
  string | { readonly metricName: string; readonly op: "<=" | ">="; readonly bound: number };

/**
 * The definition `Client.createExperiment` sends. A key not listed here is
 * refused (`spec.{key}: unknown option`), never dropped.
 */
export interface ExperimentSpec {
  readonly parameters: readonly Parameter[];
  /** Metric name -> direction. */
  readonly objectives: Readonly<Record<string, "minimize" | "maximize">>;
  readonly parameterConstraints?: readonly ParameterConstraint[];
  /** Bounds on other metrics that good arms respect: "cost <= 1", ... */
  readonly outcomeConstraints?: readonly OutcomeConstraintSpec[];
  /** Reference point of a multi-objective experiment: objective name -> worst value worth having. */
  readonly objectiveThresholds?: Readonly<Record<string, number>>;
  /** Metrics recorded but not optimized. */
  readonly trackingMetrics?: readonly string[];
  /** Unset is the server's default: Sobol, then Bayesian optimization. */
  readonly generationStrategy?: StrategySpec;
  readonly description?: string;
  /** Free-form JSON-like properties (a google.protobuf.Struct; numbers come back as floats). */
  readonly properties?: Readonly<Record<string, unknown>>;
  /** The baseline parameterization that other arms are compared with. */
  readonly statusQuo?: Readonly<Parameters>;
  /** The runner that deploys the experiment's trials (`Client.deployTrial`). */
  readonly runner?: RunnerSpec;
  /** Metric name -> where its data comes from; unlisted metrics come from clients. */
  readonly metricSources?: Readonly<Record<string, MetricSourceSpec>>;
}

// A Record over the interface's keys, so the compiler keeps the two in step.
const SPEC_OPTIONS: Record<keyof ExperimentSpec, true> = {
  parameters: true,
  objectives: true,
  parameterConstraints: true,
  outcomeConstraints: true,
  objectiveThresholds: true,
  trackingMetrics: true,
  generationStrategy: true,
  description: true,
  properties: true,
  statusQuo: true,
  runner: true,
  metricSources: true,
};

const COMPARISON_OPS = {
  "<=": ComparisonOp.COMPARISON_OP_LESS_EQUAL,
  ">=": ComparisonOp.COMPARISON_OP_GREATER_EQUAL,
} as const;

/**
 * The OutcomeConstraint message of "metric <= bound" or its parts; the server
 * judges the metric name.
 */
function outcomeConstraintMessage(field: string, spec: unknown): OutcomeConstraint {
  if (typeof spec !== "string") {
    const given = checkOptions(field, spec, { metricName: true, op: true, bound: true });
    return {
      metricName: checkString(`${field}.metricName`, given.metricName),
      op: COMPARISON_OPS[checkChoice(`${field}.op`, given.op, ["<=", ">="])],
      bound: checkNumber(`${field}.bound`, given.bound),
    };
  }
  const parts = spec.split(/(<=|>=)/).map((part) => part.trim());
  const bound = parts.length === 3 && parts[2] !== "" ? Number(parts[2]) : NaN;
  if (parts.length !== 3 || parts[0] === "" || /\s/.test(parts[0]) || Number.isNaN(bound))
    throw invalidArgument(field, `${JSON.stringify(spec)}: write "metric <= bound" or "metric >= bound"`);
  return { metricName: parts[0], op: COMPARISON_OPS[parts[1] as "<=" | ">="], bound };
}

const GENERATOR_KINDS = {
  sobol: GeneratorKind.GENERATOR_KIND_SOBOL,
  bayesian: GeneratorKind.GENERATOR_KIND_BAYESIAN,
} as const;

function strategyMessage(spec: StrategySpec): GenerationStrategy {
  const field = "generationStrategy";
  const known = { kind: true, numInitialTrials: true, seed: true } as const;
  const full = typeof spec === "string" ? { kind: spec } : checkOptions(field, spec, known);
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
  checkOptions("spec", spec, SPEC_OPTIONS);
  if (!Array.isArray(spec.parameters))
    throw invalidArgument("parameters", "is not an array of parameters (rangeParameter, ...)");
  const parameters = spec.parameters.map((parameter: Parameter, i) => {
    checkObject(`parameters[${i}]`, parameter);
    return parameter;
  });
  const objectives = checkObject("objectives", spec.objectives);
  const sources = checkObject("metricSources", spec.metricSources ?? {});
  const outcomeConstraints = checkArray("outcomeConstraints", spec.outcomeConstraints ?? []).map((c, i) =>
    outcomeConstraintMessage(`outcomeConstraints[${i}]`, c),
  );
  const objectiveThresholds: ObjectiveThreshold[] = Object.entries(
    checkObject("objectiveThresholds", spec.objectiveThresholds ?? {}),
  ).map(([metricName, bound]) => ({
    metricName,
    bound: checkNumber(`objectiveThresholds.${metricName}`, bound),
  }));
  // The status quo's numbers are sent as integers or floats by the search space, like a trial's.
  const statusQuo: Arm | undefined =
    spec.statusQuo === undefined
      ? undefined
      : { name: "", parameters: toParametersMessage(spec.statusQuo, numberKinds(parameters), "statusQuo") };
  const properties =
    spec.properties === undefined
      ? undefined
      : (checkJson("properties", checkObject("properties", spec.properties)) as Record<string, unknown>);
  return {
    name: "",
    experimentId,
    description: optional(checkString, "description", spec.description) ?? "",
    searchSpace: {
      parameters,
      parameterConstraints: [
        ...(checkArray("parameterConstraints", spec.parameterConstraints ?? []) as ParameterConstraint[]),
      ],
    },
    optimizationConfig: {
      objectives: Object.entries(objectives).map(([metricName, direction]) => ({
        metricName,
        minimize: checkChoice(`objectives.${metricName}`, direction, ["minimize", "maximize"]) === "minimize",
      })),
      outcomeConstraints,
      objectiveThresholds,
      trackingMetrics: checkArray("trackingMetrics", spec.trackingMetrics ?? []).map((m, i) =>
        checkString(`trackingMetrics[${i}]`, m),
      ),
    },
    statusQuo,
    properties,
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
